"""The range component of a never-negative series is measured on x**anomaly_range_power."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.detect import DetectorParams, score_series

OFF = replace(DetectorParams(), anomaly_range_power=1.0)


def counts(seed: int = 2, n: int = 3000) -> np.ndarray:
    """Poisson counts with a busy/quiet daily cycle: spread grows with the level."""
    rng = np.random.default_rng(seed)
    level = 40.0 + 30.0 * np.sin(np.arange(n) * 2 * np.pi / 288)
    return rng.poisson(level).astype(float)


def test_a_series_with_negative_values_is_scored_on_raw_values() -> None:
    x = counts() - 200.0  # the same counts, shifted below zero
    ts = np.arange(len(x)) * 1000
    assert score_series(ts, x).tolist() == score_series(ts, x, OFF).tolist()


def test_a_never_negative_series_weighs_bursts_less_and_drops_more() -> None:
    x = counts()
    x[2000:2003] = 160.0  # a burst far above the busy level
    x[2500:2503] = 0.0  # a fall to zero at a busy hour
    ts = np.arange(len(x)) * 1000
    on, off = score_series(ts, x), score_series(ts, x, OFF)
    assert on[2000:2003].max() < off[2000:2003].max()
    assert on[2500:2503].max() > off[2500:2503].max()
    assert on[2000:2003].max() > 0.5  # still rare, only less so


@pytest.mark.parametrize("scale", [16.0, 1 / 256])
def test_the_power_view_stays_unit_free(scale: float) -> None:
    """(c x)**0.75 = c**0.75 x**0.75: the same scores in any unit (scales by powers of
    16 are exact in floating point, so the scores are equal to the last bit)."""
    x = counts()
    x[2000:2003] = 160.0
    ts = np.arange(len(x)) * 1000
    assert score_series(ts, x * scale).tolist() == score_series(ts, x).tolist()
