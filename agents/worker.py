"""Start a Faust worker for the ewarn app, with the Prometheus exporter beside it."""

from __future__ import annotations

import logging

from faust import Worker

from agents.app import create_app
from agents.logs import quiet_repeats
from agents.observe import attach_metrics
from agents.retry import install_metadata_backoff
from pipeline.model import Registry
from pipeline.settings import Settings

log = logging.getLogger("ewarn.worker")


class QuietWorker(Worker):
    """Faust's worker whose log writes a repeated message once per 30 s (agents/logs.py)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        quiet_repeats(logger)


def run_worker(
    settings: Settings, registry: Registry, loglevel: str = "warning", source_count: int = 1
) -> None:
    """Run until SIGINT/SIGTERM; Faust handles signals and a clean shutdown."""
    install_metadata_backoff()  # no busy loop while the broker is away (agents/retry.py)
    app, runtime = create_app(settings, registry, source_count)
    attach_metrics(app, runtime, settings)
    worker = QuietWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner lowers the root logger to DEBUG so that it can spin on
    # every record: every debug call in aiokafka and Faust then builds a LogRecord
    # (~10 % of a busy worker's time) and the log fills with cursor escape codes.
    worker.spinner = None
    worker.execute_from_commandline()
