"""``ewarn worker`` refuses a busy metrics or web port up front, in one line."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from pipeline.cli import app


@pytest.mark.parametrize("option", ["--metrics-port", "--web-port"])
def test_a_port_in_use_is_named_before_kafka_is_contacted(option: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = ["--metrics-port", "0"] if option == "--web-port" else []
        # an unreachable bootstrap: the check must come before any Kafka set-up
        result = CliRunner().invoke(
            app, ["worker", "--bootstrap", "127.0.0.1:1", option, str(port), *other])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{port} is in use" in result.output
    assert option in result.output
