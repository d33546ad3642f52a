"""Damping after an anomaly alarm: one alarm per event, but a far larger new event alarms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.detect import DetectorParams, score_series

NO_REARM = replace(DetectorParams(), anomaly_rearm=1e9)


def test_a_far_larger_event_inside_the_damping_alarms_at_once() -> None:
    rng = np.random.default_rng(5)
    x = 50.0 + rng.normal(0.0, 1.0, 2000)
    x[1000] = 54.5  # a modest outlier: alarms and starts the damping
    x[1040] = 90.0  # a far larger one, 40 samples later (damping lasts 100)
    t = np.arange(x.size)
    on, off = score_series(t, x), score_series(t, x, NO_REARM)
    assert on[1000] >= 0.5 and off[1000] >= 0.5
    assert np.all(on[1001:1040] < 0.5)  # the modest event is over: nothing in between
    assert on[1040] >= 0.95  # re-armed: reported at full strength ...
    assert off[1040] < 0.5  # ... where plain damping would have hidden it


def test_a_growing_event_stays_one_alarm() -> None:
    rng = np.random.default_rng(5)
    x = 50.0 + rng.normal(0.0, 1.0, 2000)
    x[1000:] = x[999]  # the sensor sticks: the collapse deepens with every sample
    t = np.arange(x.size)
    sc = score_series(t, x)
    first = 1000 + int(np.flatnonzero(sc[1000:] >= 0.5)[0])
    damping = DetectorParams().anomaly_suppress_n
    assert np.all(sc[first + 1 : first + damping] < 0.5)
    np.testing.assert_array_equal(sc, score_series(t, x, NO_REARM))


def test_a_scheduled_excursion_stops_alarming_and_an_unscheduled_one_still_does() -> None:
    rng = np.random.default_rng(8)
    x = 0.13 + 0.02 * rng.standard_normal(4032)  # 5-minute CPU load, two weeks
    x[150::288] = 1.5  # a daily job
    x[3500] = 3.0  # a real, unscheduled excursion
    t = np.arange(x.size)
    sc = score_series(t, x)
    never = replace(DetectorParams(), anomaly_period_tol=-1.0, anomaly_recur_div=1.0)
    off = score_series(t, x, never)  # neither the schedule nor the recurrence damps
    jobs = np.arange(150, 3500, 288)
    assert np.all(sc[jobs[:3]] >= 0.5)  # three alarms before the interval is known
    assert sc[jobs[3]] < 0.5 <= off[jobs[3]]  # the fourth, at the same interval: damped
    assert np.all(sc[jobs[3:]] < 0.5)  # and the schedule stays quiet
    assert sc[3500] >= 0.95  # the unscheduled excursion is reported


def test_an_excursion_as_high_as_three_earlier_ones_is_recurrent_a_higher_one_is_not() -> None:
    rng = np.random.default_rng(3)
    x = 100.0 + 5.0 * rng.standard_normal(16000)  # counts per interval
    bursts = [1000, 1700, 2900, 3600]  # irregular bursts; the fourth no higher than the
    x[bursts] = (132.0, 131.0, 130.0, 124.0)  # others' peaks, which have faded a little
    x[15000] = 160.0  # higher than every earlier burst
    t = np.arange(x.size)
    sc = score_series(t, x)
    off = score_series(t, x, replace(DetectorParams(), anomaly_recur_div=1.0))
    assert np.all(sc[bursts[:3]] >= 0.5)  # the first three are new
    assert sc[bursts[3]] < 0.5 <= off[bursts[3]]  # the fourth went where three went
    assert sc[15000] >= 0.5  # a new height still alarms


def test_recurrence_fades_a_height_reached_long_ago_alarms_again() -> None:
    rng = np.random.default_rng(3)
    x = 100.0 + 5.0 * rng.standard_normal(30000)
    x[[1000, 4400, 8100]] = (132.0, 130.0, 131.0)
    x[26000] = 126.0  # nearly as high as before, but 18,000 samples (3.6 fading memories) later
    t = np.arange(x.size)
    sc = score_series(t, x)
    forever = score_series(t, x, replace(DetectorParams(), anomaly_recur_leak_n=1e12))
    # never fading, the range is damped (0.5 is a single novel context's own score)
    assert forever[26000] <= 0.5
    assert sc[26000] >= DetectorParams().anomaly_on  # faded: a finding opens again


def test_recurrence_parameters_out_of_range_are_refused() -> None:
    for bad in ({"anomaly_recur_k": 0}, {"anomaly_recur_k": 4}, {"anomaly_recur_div": 0.5},
                {"anomaly_recur_leak_n": 0.0}):
        with pytest.raises(ValueError, match="anomaly_recur"):
            replace(DetectorParams(), **bad)
