"""The NAB scorer reproduces published nab-dev figures from the reference result files."""

from __future__ import annotations

import pytest

from bench import nab

pytestmark = pytest.mark.skipif(not nab.NAB_DIR.is_dir(), reason="nab-dev dataset not present")


@pytest.mark.parametrize("detector", ["numenta", "windowedGaussian"])
def test_reference_detectors_reproduced(detector: str) -> None:
    got = nab.reference_score(detector)
    ref = nab.REFERENCE[detector]
    assert got["standard"] == pytest.approx(ref[0], abs=0.15)
    assert got["reward_low_FP_rate"] == pytest.approx(ref[1], abs=0.15)
    assert got["reward_low_FN_rate"] == pytest.approx(ref[2], abs=0.15)


def test_scaled_sigmoid_anchor_points() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(3.5) == -1.0


def test_breakdown_adds_up_to_the_swept_corpus_score() -> None:
    scored = nab.reference_scored("numenta")
    thr, rows = nab.breakdown(scored)
    windows = nab.load_windows()
    files = [nab.prepare(n, ts, sc, windows[n]) for n, ts, sc in scored]
    best_thr, best_raw = nab.sweep(files, nab.PROFILES["standard"])
    assert thr == best_thr
    assert sum(raw for _, raw, _, _ in rows) == pytest.approx(best_raw)
    # a window's reward is in (-1, 1] when detected; misses are None and cost 1 each
    for _, _, n_fp, rewards in rows:
        assert n_fp >= 0
        assert all(r is None or -1.0 < r <= 1.0 for r in rewards)
