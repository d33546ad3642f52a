"""Level component of the anomaly scorer: known answers and the state-layout upgrade."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.detect import AnomalyScorer, DetectorParams, SensorState, score_series
from pipeline.detect import kernel as K

DAY = 48  # samples per simulated day (30-minute readings)
LEVEL_OFF = replace(DetectorParams(), anomaly_level_warmup=1e9)  # the scorer without it


def _daily(seed: int, days: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(DAY * days)
    return 100.0 + 50.0 * np.sin(2 * np.pi * t / DAY) + rng.normal(0.0, 5.0, t.size)


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_a_quiet_holiday_inside_the_normal_range_is_caught_by_the_level_only(seed: int) -> None:
    x = _daily(seed)
    holiday = slice(30 * DAY, 33 * DAY)  # three days at a lower level and swing
    rng = np.random.default_rng(100 + seed)
    t = np.arange(x.size)
    x[holiday] = 75.0 + 20.0 * np.sin(2 * np.pi * t[holiday] / DAY) + rng.normal(0.0, 5.0, 3 * DAY)
    assert x[holiday].min() > x[: 30 * DAY].min() and x[holiday].max() < x[: 30 * DAY].max()
    on = score_series(t, x)
    off = score_series(t, x, LEVEL_OFF)
    normal = slice(10 * DAY, 30 * DAY)
    assert not np.any((on[normal] >= 0.5) & (off[normal] < 0.5))  # no alarm of its own
    assert off[holiday].max() < 0.5  # value, spike, collapse and context see nothing rare
    assert on[holiday].max() >= 0.5  # the level does, within the holiday
    after = slice(34 * DAY, None)
    assert not np.any((on[after] >= 0.5) & (off[after] < 0.5))  # back to normal: no 2nd


def test_a_lasting_shift_alarms_once_then_becomes_the_new_normal() -> None:
    x = _daily(2, days=60)
    x[35 * DAY :] += 20.0  # a lasting shift, smaller than the daily swing
    t = np.arange(x.size)
    on = score_series(t, x)
    off = score_series(t, x, LEVEL_OFF)
    own = np.flatnonzero((on >= 0.5) & (off < 0.5))  # alarms due to the level alone
    assert own.size == 1  # one alarm for the whole 25-day shift ...
    assert 35 * DAY <= own[0] < 37 * DAY  # ... within two days of its start


def _layout1(v: list[float]) -> list[float]:
    """The state vector as the previous release stored it (no level fields)."""
    return [*v[: K.A_LA], *v[K.A_BITS : K.A_XD], *v[K.A_SIZE :]]


def test_layout1_scorer_state_is_upgraded_and_continues_calmly() -> None:
    x = _daily(3, days=50)
    s = AnomalyScorer()
    for i in range(30 * DAY):
        s.score_one(i, float(x[i]))
    old = {"v": _layout1(s.v)}
    assert len(old["v"]) == K.A_SIZE - K.LAYOUT2_FIELDS - K.LAYOUT3_FIELDS
    up = AnomalyScorer.from_dict(old)
    assert len(up.v) == K.A_SIZE
    assert up.v[K.A_LA] == up.v[K.A_LB] == up.v[K.A_LMU] == s.v[K.A_MU]
    assert (up.v[K.A_LLO], up.v[K.A_LHI]) == (s.v[K.A_LO], s.v[K.A_HI])
    ref = AnomalyScorer(LEVEL_OFF)  # what the old release would have scored from here
    ref.v = list(up.v)
    for i in range(30 * DAY, x.size):
        got = up.score_one(i, float(x[i]))
        assert got == ref.score_one(i, float(x[i]))  # no level alarm from the upgrade


def test_layout1_sensor_state_is_upgraded_and_other_lengths_are_refused() -> None:
    fresh = SensorState()
    old = [None if x != x else x for x in fresh.v]  # the layout-1 JSON form
    old = [*old[: K.A_LA], *old[K.A_BITS : K.A_XD], *old[K.A_SIZE :]]
    assert len(SensorState.from_dict({"v": old}).v) == K.N_STATE
    with pytest.raises(ValueError, match="fields"):
        SensorState.from_dict({"v": old[:-1]})


def test_layout2_state_is_upgraded_with_empty_peaks_and_continues_exactly() -> None:
    """A state stored before the recurrence memory (61 floats) keeps all it learnt."""
    x = _daily(5, days=40)
    s = SensorState()
    scorer = AnomalyScorer()
    for i in range(20 * DAY):
        scorer.score_one(i, float(x[i]))
    layout2 = [*scorer.v[: K.A_XD], *scorer.v[K.A_SIZE :]]
    assert len(layout2) == K.A_SIZE - K.LAYOUT3_FIELDS
    up = AnomalyScorer.from_dict({"v": layout2})
    assert up.v[: K.A_XD] == scorer.v[: K.A_XD]  # nothing learnt is lost
    assert up.v[K.A_XD] == 0.0 and all(v != v for v in up.v[K.A_XP : K.A_SIZE])
    # from there on it scores as a scorer whose peaks were just emptied
    ref = AnomalyScorer()
    ref.v = [*scorer.v[: K.A_XD], 0.0, *[float("nan")] * (K.LAYOUT3_FIELDS - 1)]
    for i in range(20 * DAY, x.size):
        assert up.score_one(i, float(x[i])) == ref.score_one(i, float(x[i]))
    full = [None if v != v else v for v in s.v]
    assert len(SensorState.from_dict({"v": [*full[: K.A_XD], *full[K.A_SIZE :]]}).v) == K.N_STATE


def test_a_level_alarm_does_not_hide_a_sharp_event_that_follows() -> None:
    x = _daily(2, days=60)
    x[35 * DAY :] += 20.0
    t = np.arange(x.size)
    on, off = score_series(t, x), score_series(t, x, LEVEL_OFF)
    first = int(np.flatnonzero((on >= 0.5) & (off < 0.5))[0])  # the level alarm of the shift
    x[first + 10] = x[first + 9] + 400.0  # a spike ten samples later, inside the damping
    sc = score_series(t, x)
    assert sc[first] >= 0.5 and sc[first + 10] >= 0.5  # both reported
