from __future__ import annotations

from pipeline.settings import Settings


def test_defaults_env_prefix_and_overrides() -> None:
    s = Settings.from_env({})
    assert s.bootstrap == "127.0.0.1:9092"
    assert s.web_host == "127.0.0.1"  # loopback by default
    env = {"EWARN_BOOTSTRAP": "10.0.0.1:9", "EWARN_WEB_PORT": "7000", "WEB_PORT": "1",
           "EWARN_TOPIC_WARNINGS": "x.warn", "EWARN_IDLE_TICK_S": "0.5"}
    s = Settings.from_env(env)
    assert (s.bootstrap, s.web_port, s.topics.warnings, s.idle_tick_s) == (
        "10.0.0.1:9", 7000, "x.warn", 0.5)
    assert s.topics.telemetry == "ew.telemetry"
    # Explicit (CLI) values win; None means "not given".
    s = Settings.from_env(env, bootstrap="h:1", web_port=None)
    assert (s.bootstrap, s.web_port) == ("h:1", 7000)
