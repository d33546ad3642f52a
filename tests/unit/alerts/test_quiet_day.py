"""A quiet (incident-free) stretch must stay nearly silent: every alert is a false one."""

from __future__ import annotations

from bench.quiet_day import run


def test_quiet_six_hours_raise_at_most_a_few_informational_alerts() -> None:
    res = run(n_sensors=20, hours=6, interval_s=60, seed=7)
    opened = res["opened"]
    assert isinstance(opened, dict)
    # no level, trend, health or fault alert at all on normal data
    assert set(opened) <= {"anomaly"}, opened
    assert sum(opened.values()) <= 4  # measured 2 (blue) with this seed
    levels = res["levels"]
    assert isinstance(levels, dict)
    assert set(levels) <= {"blue", "yellow"}
