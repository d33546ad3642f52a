"""The Faust app's client settings that operators rely on without seeing them."""

from __future__ import annotations

from agents.app import METADATA_MAX_AGE_MS, create_app
from pipeline.model import Registry
from pipeline.settings import Settings


def test_clients_refresh_topic_metadata_within_seconds() -> None:
    """A topic Faust created at start-up but missed in the first assignment is picked up
    at the next metadata refresh: it must come in seconds (aiokafka's default is 5 min,
    during which a fresh deployment's site agent would receive nothing)."""
    app, _ = create_app(Settings(), Registry())
    assert app.conf.consumer_metadata_max_age_ms == METADATA_MAX_AGE_MS <= 15_000
    assert app.conf.producer_metadata_max_age_ms == METADATA_MAX_AGE_MS
    assert app.conf.web_bind == "127.0.0.1" and app.conf.web_enabled
    assert not app.conf.web_tables_enabled  # table contents stay off the web
