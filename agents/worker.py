"""Start a Faust worker for the ewarn app, with the Prometheus exporter beside it."""

from __future__ import annotations

import logging

from faust import Worker

from agents.app import create_app
from agents.observe import attach_metrics
from pipeline.model import Registry
from pipeline.settings import Settings

log = logging.getLogger("ewarn.worker")


def run_worker(
    settings: Settings, registry: Registry, loglevel: str = "warning", source_count: int = 1
) -> None:
    """Run until SIGINT/SIGTERM; Faust handles signals and a clean shutdown."""
    app, runtime = create_app(settings, registry, source_count)
    attach_metrics(app, runtime, settings)
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
