"""The ``ewarn`` command: a thin edge over the core (no detection logic here).

Each sub-module registers its commands on the shared Typer ``app``; importing
them here is what wires the command tree.
"""

from __future__ import annotations

from pipeline.cli._app import app
from pipeline.cli import broker as _broker  # noqa: F401  (registers commands)
from pipeline.cli import kafka as _kafka  # noqa: F401


def main() -> None:
    app()


__all__ = ["app", "main"]
