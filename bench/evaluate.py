"""Quality of the anomaly scorer: NAB (nab-dev) and SKAB, with one parameter set.

Run: ``.venv/bin/python -m bench.evaluate [--files] [--nab-dir DIR ...] [--ref CSV ...]``.
Uses ``score_series`` (the code behind ``ewarn score``). Never tune per file.
``--nab-dir`` scores other directories in the nab-dev layout (e.g. held-out NAB
categories), several together as one corpus (one threshold); ``--ref`` adds a
reference detector from NAB's published per-file results
(``results/<detector>/<detector>_standard_scores.csv``), normalised over the same files;
``--files`` prints where the score is won and lost, file by file.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from bench import nab
from pipeline.detect import DetectorParams, score_series

SKAB_DIR = Path("/work/shared/datasets/skab/data")
SKAB_TEST_FROM = 400  # leaderboard convention: rows after the first 400 of each file


def nab_scored(
    params: DetectorParams, nab_dir: Path = nab.NAB_DIR
) -> list[tuple[str, list[str], np.ndarray]]:
    scored = []
    for name in sorted(nab.load_windows(nab_dir)):
        ts, vals, _ = nab.read_csv(nab_dir / "data" / name)
        scored.append((name, ts, score_series(np.zeros(len(vals), dtype=np.int64), vals, params)))
    return scored


def nab_scored_dirs(
    params: DetectorParams, nab_dirs: list[Path]
) -> list[tuple[str, list[str], np.ndarray]]:
    return [item for d in nab_dirs for item in nab_scored(params, d)]


def nab_scores(params: DetectorParams, nab_dir: Path = nab.NAB_DIR) -> dict[str, float]:
    return nab.corpus_score(nab_scored(params, nab_dir), nab_dir)


def skab_predict(
    channels: np.ndarray, params: DetectorParams, cutoff: float, hold: int
) -> np.ndarray:
    """Alarm rows: max over channels of the per-channel score >= cutoff, held ``hold`` rows.

    Max: an anomaly shows in any one channel; the score is calibrated per channel so the
    max is comparable. The hold turns the one-shot (suppressed) score into an alarm
    episode, as the sensor path does with its off-delay.
    """
    n = channels.shape[0]
    s = np.zeros(n)
    for j in range(channels.shape[1]):
        s = np.maximum(s, score_series(np.zeros(n, dtype=np.int64), channels[:, j], params))
    hit = s >= cutoff
    out = np.zeros(n, dtype=bool)
    last = -(10**9)
    for i in range(n):
        if hit[i]:
            last = i
        out[i] = i - last <= hold
    return out


def skab_scores(params: DetectorParams, cutoff: float = 0.5) -> dict[str, float]:
    tp = fp = tn = fn = 0
    files = sorted(p for p in SKAB_DIR.rglob("*.csv") if "anomaly-free" not in str(p))
    for path in files:
        with open(path) as fh:
            rows = list(csv.reader(fh, delimiter=";"))
        header, body = rows[0], rows[1:]
        lab = header.index("anomaly")
        cols = [i for i, h in enumerate(header) if h not in ("datetime", "anomaly", "changepoint")]
        x = np.array([[float(r[i]) for i in cols] for r in body])
        y = np.array([float(r[lab]) > 0.5 for r in body])
        pred = skab_predict(x, params, cutoff, params.anomaly_suppress_n)
        y, pred = y[SKAB_TEST_FROM:], pred[SKAB_TEST_FROM:]
        tp += int(np.sum(pred & y))
        fp += int(np.sum(pred & ~y))
        tn += int(np.sum(~pred & ~y))
        fn += int(np.sum(~pred & y))
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    return {"F1": f1, "FAR": fp / max(fp + tn, 1), "MAR": fn / max(fn + tp, 1), "files": len(files)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab-dir", type=Path, action="append",
                    help="NAB-layout directory (repeat to score several as one corpus)")
    ap.add_argument("--ref", type=Path, action="append", default=[],
                    help="published per-file scores CSV of a reference detector (standard)")
    ap.add_argument("--files", action="store_true", help="per-file breakdown")
    args = ap.parse_args()
    dirs: list[Path] = args.nab_dir or [nab.NAB_DIR]
    p = DetectorParams()
    t0 = time.perf_counter()
    windows = nab.load_windows_of(dirs)
    scored = nab_scored_dirs(p, dirs)
    ours = nab.corpus_score(scored, windows=windows)
    print(f"NAB {' + '.join(d.name for d in dirs)} ({len(scored)} series), scored in "
          f"{time.perf_counter() - t0:.1f}s")
    print(f"{'detector':18s} {'standard':>9s} {'low_FP':>8s} {'low_FN':>8s}")
    print(
        f"{'ewarn':18s} {ours['standard']:9.1f} {ours['reward_low_FP_rate']:8.1f} "
        f"{ours['reward_low_FN_rate']:8.1f}   (best thresholds "
        f"{ours['standard_threshold']:.3f}/{ours['reward_low_FP_rate_threshold']:.3f}/"
        f"{ours['reward_low_FN_rate_threshold']:.3f})"
    )
    files = [nab.prepare(n, ts, sc, windows[n]) for n, ts, sc in scored] if args.ref else []
    for ref in args.ref:
        value = nab.published_score(nab.published_file_scores(ref), files)
        print(f"{ref.stem.split('_')[0]:18s} {value:9.1f}   (published per-file, {ref.name})")
    if args.files:
        thr, rows = nab.breakdown(scored, windows=windows)
        print(f"per file at the standard threshold {thr:.3f} (window rewards; None = missed):")
        for name, raw, n_fp, rewards in rows:
            shown = ", ".join("None" if r is None else f"{r:.2f}" for r in rewards)
            print(f"  {name:58s} {raw:6.2f}  FP {n_fp:3d}  [{shown}]")
    if dirs != [nab.NAB_DIR]:
        return  # the published figures and SKAB belong to the development set
    for det, ref in nab.REFERENCE.items():
        print(f"{det:18s} {ref[0]:9.1f} {ref[1]:8.1f} {ref[2]:8.1f}   (published)")
    if SKAB_DIR.is_dir():
        t0 = time.perf_counter()
        sk = skab_scores(p)
        print(
            f"\nSKAB ({sk['files']:.0f} files, rows after 400; max over 8 channels, score >= 0.5, "
            f"held {p.anomaly_suppress_n} rows), {time.perf_counter() - t0:.1f}s"
        )
        print(
            f"ewarn   F1 {sk['F1']:.2f}  FAR {100 * sk['FAR']:.1f} %  MAR {100 * sk['MAR']:.1f} %"
        )
        print("leader  F1 0.78 (Conv-AE/MSET); Conv-AE FAR 13.6 %, MAR 28.0 %")


if __name__ == "__main__":
    main()
