"""The NAB scorer (Numenta Anomaly Benchmark v1.1), re-implemented from the published method.

Per file: the first ``min(floor(0.15 n), 750)`` rows are probationary (scored 0).
Inside a labelled window a detection is worth ``A_TP * sigmoid_scaled(pos) / sigmoid_scaled(-1)``
(earlier = more), only the best (= first) detection of a window counts, an undetected
window costs ``-A_FN``. A detection outside any window costs ``A_FP * sigmoid_scaled(pos)``
(negative), ``pos`` being the distance past the previous window's right edge in window
widths (-1 when no window precedes). One threshold per detector is chosen by a sweep over
the whole corpus; the total is normalised ``100 (raw - null) / (perfect - null)`` with
``perfect = A_TP * number of windows``. Mirrors ``nab/sweeper.py`` and ``nab/runner.py``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAB_DIR = Path("/work/shared/datasets/nab-dev")

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "tn": 1.0, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "tn": 1.0, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "tn": 1.0, "fn": 2.0},
}

REFERENCE = {  # published nab-dev figures (SOURCE.txt): standard / low FP / low FN
    "ARTime": (68.8, 60.0, 74.1),
    "numenta": (64.9, 59.1, 69.8),
    "contextOSE": (57.5, 53.8, 61.4),
    "windowedGaussian": (28.2, 22.4, 31.6),
    "null": (0.0, 0.0, 0.0),
}


def scaled_sigmoid(pos: float) -> float:
    """NAB's weighting: 2*sigmoid(-5 pos) - 1, and -1 beyond 3 widths past a window."""
    if pos > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * pos)) - 1.0


@dataclass
class FileParts:
    """Per-row sweep weights of one file (independent of the cost profile's magnitudes)."""

    name: str
    scores: np.ndarray  # detector anomaly scores
    unweighted: np.ndarray  # scaled sigmoid value of each row (TP or FP shape)
    window: np.ndarray  # window id per row, -1 outside windows, -2 probationary
    n_windows: int  # windows holding at least one non-probationary row
    n_labelled: int  # windows in the label file (for the perfect score)


def _ts(text: str) -> np.datetime64:
    return np.datetime64(text.strip().replace(" ", "T"), "ms")


def prepare(
    name: str, timestamps: list[str], scores: np.ndarray, windows: list[list[str]]
) -> FileParts:
    """Compute ``calcSweepScore`` of nab/sweeper.py for one file (profile-free parts)."""
    ts = np.array([_ts(t) for t in timestamps])
    n = len(ts)
    index = {t: i for i, t in enumerate(ts.tolist())}
    limits = [(index[_ts(a).tolist()], index[_ts(b).tolist()]) for a, b in windows]
    prob = min(math.floor(0.15 * n), 0.15 * 5000)
    max_tp = scaled_sigmoid(-1.0)
    unweighted = np.empty(n)
    window = np.full(n, -1, dtype=np.int64)
    cur: tuple[int, int] | None = None
    wid = -1
    prev_right: int | None = None
    prev_width = 0.0
    pending = list(limits)
    for i in range(n):
        if pending and i == pending[0][0]:
            cur = pending.pop(0)
            wid += 1
        if cur is not None:
            width = float(cur[1] - cur[0] + 1)
            unweighted[i] = scaled_sigmoid(-(cur[1] - i + 1) / width) / max_tp
            window[i] = wid
        elif prev_right is None:
            unweighted[i] = -1.0
        else:
            unweighted[i] = scaled_sigmoid(abs(prev_right - i) / (prev_width - 1.0))
        if i < prob:
            window[i] = -2
            unweighted[i] = 0.0
        if cur is not None and i == cur[1]:
            prev_right = i
            prev_width = float(cur[1] - cur[0] + 1)
            cur = None
    n_windows = len({int(w) for w in window if w >= 0})
    return FileParts(name, np.asarray(scores, float), unweighted, window, n_windows, len(windows))


def file_score(parts: FileParts, threshold: float, profile: dict[str, float]) -> float:
    """Raw NAB score of one file when every row with score >= threshold is a detection."""
    det = parts.scores >= threshold
    fp = float(np.sum(parts.unweighted[det & (parts.window == -1)])) * profile["fp"]
    total = fp
    for w in range(parts.window.max() + 1 if parts.window.size else 0):
        hits = det & (parts.window == w)
        if np.any(hits):
            total += float(np.max(parts.unweighted[hits])) * profile["tp"]
        else:
            total -= profile["fn"]
    return total


def sweep(files: list[FileParts], profile: dict[str, float]) -> tuple[float, float]:
    """Best (threshold, raw score) over the corpus: NAB's calcScoreByThreshold + optimizer.

    Rows are taken in descending score order; the score at threshold t counts every row
    with score >= t (ties enter together), a window is worth the best weight among its
    detected rows, FP rows add their (negative) weight.
    """
    scores = np.concatenate([f.scores for f in files])
    weights = np.concatenate([f.unweighted for f in files])
    win = []
    offset = 0
    for f in files:
        w = f.window.copy()
        w[w >= 0] += offset
        offset += int(f.window.max() + 1) if f.window.size and f.window.max() >= 0 else 0
        win.append(w)
    window = np.concatenate(win)
    n_win = offset
    order = np.argsort(-scores, kind="stable")
    best_w = np.full(n_win, -profile["fn"])
    has = np.zeros(n_win, dtype=bool)
    # Only windows with a scoreable row count (probationary rows belong to no window).
    present = np.zeros(n_win, dtype=bool)
    present[window[window >= 0]] = True
    win_sum = -profile["fn"] * float(present.sum())
    fp_sum = 0.0
    best = (1.1, win_sum)
    s_sorted = scores[order]
    i = 0
    n = len(order)
    while i < n:
        t = s_sorted[i]
        j = i
        while j < n and s_sorted[j] == t:
            k = order[j]
            w = window[k]
            if w == -1:
                fp_sum += weights[k] * profile["fp"]
            elif w >= 0:
                val = weights[k] * profile["tp"]
                if not has[w] or val > best_w[w]:
                    win_sum += val - best_w[w]
                    best_w[w] = val
                    has[w] = True
            j += 1
        total = fp_sum + win_sum
        if total > best[1]:
            best = (float(t), total)
        i = j
    return best


def normalised(raw: float, null: float, perfect: float) -> float:
    return 100.0 * (raw - null) / (perfect - null)


def load_windows(nab_dir: Path = NAB_DIR) -> dict[str, list[list[str]]]:
    with open(nab_dir / "labels" / "combined_windows.json") as fh:
        out: dict[str, list[list[str]]] = json.load(fh)
    return out


def read_csv(path: Path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """timestamps, values, anomaly_score column (None when absent)."""
    ts: list[str] = []
    vals: list[float] = []
    sc: list[float] = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        has_score = reader.fieldnames is not None and "anomaly_score" in reader.fieldnames
        for row in reader:
            ts.append(row["timestamp"])
            vals.append(float(row["value"]))
            if has_score:
                sc.append(float(row["anomaly_score"]))
    return ts, np.array(vals), (np.array(sc) if has_score else None)


def load_windows_of(nab_dirs: Iterable[Path]) -> dict[str, list[list[str]]]:
    """The windows of several NAB-layout directories (file names are category-qualified)."""
    out: dict[str, list[list[str]]] = {}
    for d in nab_dirs:
        out.update(load_windows(d))
    return out


def null_and_perfect(files: list[FileParts], prof: dict[str, float]) -> tuple[float, float]:
    """Raw scores of the null detector (swept) and of a perfect one over ``files``."""
    null_files = [
        FileParts(
            f.name, np.full(len(f.scores), 0.5), f.unweighted, f.window, f.n_windows, f.n_labelled
        )
        for f in files
    ]
    null_thr, _ = sweep(null_files, prof)
    null = sum(file_score(f, null_thr, prof) for f in null_files)
    return null, sum(f.n_labelled for f in files) * prof["tp"]


def corpus_score(
    scored: Iterable[tuple[str, list[str], np.ndarray]],
    nab_dir: Path = NAB_DIR,
    windows: dict[str, list[list[str]]] | None = None,
) -> dict[str, float]:
    """Normalised NAB score per profile for (relative name, timestamps, scores) of every file."""
    windows = load_windows(nab_dir) if windows is None else windows
    files = [prepare(name, ts, sc, windows[name]) for name, ts, sc in scored]
    out: dict[str, float] = {}
    for pname, prof in PROFILES.items():
        thr, _ = sweep(files, prof)
        raw = sum(file_score(f, thr, prof) for f in files)
        null, perfect = null_and_perfect(files, prof)
        out[pname] = normalised(raw, null, perfect)
        out[pname + "_threshold"] = thr
    return out


def published_file_scores(path: Path) -> dict[str, float]:
    """Per-file raw scores from NAB's ``results/<detector>/<detector>_<profile>_scores.csv``."""
    with open(path, newline="") as fh:
        return {row["File"]: float(row["Score"]) for row in csv.DictReader(fh)
                if row["File"].endswith(".csv")}


def published_score(
    per_file: dict[str, float], files: list[FileParts], profile: str = "standard"
) -> float:
    """A reference detector's score over ``files``, normalised the same way as ours.

    Its per-file raw scores were taken at its own threshold (swept over the whole NAB),
    so over a subset this is its published behaviour, not a re-swept one.
    """
    null, perfect = null_and_perfect(files, PROFILES[profile])
    return normalised(sum(per_file[f.name] for f in files), null, perfect)


def breakdown(
    scored: Iterable[tuple[str, list[str], np.ndarray]],
    profile: str = "standard",
    nab_dir: Path = NAB_DIR,
    windows: dict[str, list[list[str]]] | None = None,
) -> tuple[float, list[tuple[str, float, int, list[float | None]]]]:
    """Per file at the corpus-optimal threshold: (name, raw score, FP rows, reward per window).

    A window's reward is None when it was missed. For finding where a detector loses.
    """
    windows = load_windows(nab_dir) if windows is None else windows
    files = [prepare(name, ts, sc, windows[name]) for name, ts, sc in scored]
    prof = PROFILES[profile]
    thr, _ = sweep(files, prof)
    rows = []
    for f in files:
        det = f.scores >= thr
        rewards: list[float | None] = []
        for w in range(f.window.max() + 1 if f.window.size else 0):
            hits = det & (f.window == w)
            rewards.append(float(np.max(f.unweighted[hits])) if np.any(hits) else None)
        n_fp = int(np.sum(det & (f.window == -1)))
        rows.append((f.name, file_score(f, thr, prof), n_fp, rewards))
    return thr, rows


def reference_scored(
    detector: str, nab_dir: Path = NAB_DIR
) -> list[tuple[str, list[str], np.ndarray]]:
    """(name, timestamps, scores) of a published reference detector's result files."""
    scored = []
    for name in sorted(load_windows(nab_dir)):
        cat, fname = name.split("/")
        path = nab_dir / "reference_results" / detector / cat / f"{detector}_{fname}"
        ts, _, sc = read_csv(path)
        assert sc is not None
        scored.append((name, ts, sc))
    return scored


def reference_score(detector: str, nab_dir: Path = NAB_DIR) -> dict[str, float]:
    """Score a published reference detector's result files with this scorer."""
    return corpus_score(reference_scored(detector, nab_dir), nab_dir)


if __name__ == "__main__":
    for det, ref in REFERENCE.items():
        r = reference_score(det)
        print(
            f"{det:18s} standard {r['standard']:6.1f} ({ref[0]:5.1f})  "
            f"low_FP {r['reward_low_FP_rate']:6.1f} ({ref[1]:5.1f})  "
            f"low_FN {r['reward_low_FN_rate']:6.1f} ({ref[2]:5.1f})"
        )
