"""The NAB scorer reproduces published nab-dev figures from the reference result files."""

from __future__ import annotations

from pathlib import Path

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


def test_published_per_file_scores_normalise_like_a_swept_corpus(tmp_path: Path) -> None:
    """A reference detector's per-file results (NAB's *_scores.csv) give its corpus score."""
    scored = nab.reference_scored("numenta")
    _, rows = nab.breakdown(scored)
    csv_path = tmp_path / "numenta_standard_scores.csv"
    lines = ["Detector,Profile,File,Threshold,Score"]
    lines += [f"numenta,standard,{name},0.5,{raw!r}" for name, raw, _, _ in rows]
    lines.append("Totals,,,,0")  # NAB's summary row is not a file
    csv_path.write_text("\n".join(lines) + "\n")
    per_file = nab.published_file_scores(csv_path)
    assert len(per_file) == len(rows)
    windows = nab.load_windows_of([nab.NAB_DIR])
    files = [nab.prepare(n, ts, sc, windows[n]) for n, ts, sc in scored]
    expected = nab.corpus_score(scored, windows=windows)["standard"]
    assert nab.published_score(per_file, files) == pytest.approx(expected)
    assert round(expected, 1) == nab.REFERENCE["numenta"][0]
