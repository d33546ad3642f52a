"""The ``ewarn`` command: a thin edge over the core (no detection logic here).

Each sub-module registers its commands on the shared Typer ``app``; importing
them here is what wires the command tree.
"""

from __future__ import annotations

from pipeline.cli import broker as _broker  # noqa: F401  (registers commands)
from pipeline.cli import console as _console  # noqa: F401
from pipeline.cli import demo as _demo  # noqa: F401
from pipeline.cli import detect as _detect  # noqa: F401
from pipeline.cli import kafka as _kafka  # noqa: F401
from pipeline.cli import score as _score  # noqa: F401  (registers commands)
from pipeline.cli import simulate as _simulate  # noqa: F401
from pipeline.cli import validate as _validate  # noqa: F401
from pipeline.cli import worker as _worker  # noqa: F401
from pipeline.cli._app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
