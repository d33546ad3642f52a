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
