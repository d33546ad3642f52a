"""Every ``ewarn`` command's ``--help`` renders (rich markup in help text can break it)."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from pipeline.cli import app

COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_the_command_list_is_the_documented_surface() -> None:
    assert {"detect", "score", "worker", "tail", "demo", "ack", "topics"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_renders(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
