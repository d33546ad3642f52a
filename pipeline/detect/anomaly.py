"""The univariate anomaly scorer on its own (no registry): ``ewarn score`` and NAB use it."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.detect import kernel as K
from pipeline.detect.params import DetectorParams

DEFAULT_PARAMS = DetectorParams()


class AnomalyScorer:
    """Causal streaming score in [0, 1]; 0.5 means "rare under normal behaviour".

    >>> s = AnomalyScorer()
    >>> [round(s.score_one(i * 1000, 1.0 + (i % 3) * 0.1), 3) for i in range(3)]
    [0.0, 0.0, 0.0]
    """

    __slots__ = ("params", "v")

    def __init__(self, params: DetectorParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self.v: list[float] = K.initial_scorer()

    def score_one(self, ts_ms: int, value: float) -> float:
        """Score ``value`` against what came before, then learn from it.

        The scorer is count-based (one sample = one step), so ``ts_ms`` only documents
        the call; ordering is the caller's.
        """
        return float(K.score_update(self.v, float(value), True, self.params, K.ScalarOps))

    def to_dict(self) -> dict[str, Any]:
        return K.pack(self.v)

    @classmethod
    def from_dict(cls, d: dict[str, Any], params: DetectorParams = DEFAULT_PARAMS) -> AnomalyScorer:
        s = cls(params)
        vals = K.upgrade(K.unpack(d))
        if len(vals) != K.A_SIZE:
            raise ValueError(f"scorer state has {len(vals)} fields, expected {K.A_SIZE}")
        s.v = vals
        return s


def score_series(
    ts_ms: np.ndarray, values: np.ndarray, params: DetectorParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Scores of a whole series, row by row: identical to ``score_one`` in a loop."""
    scorer = AnomalyScorer(params)
    out = np.empty(len(values), dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64).tolist()
    tss = np.asarray(ts_ms).tolist()
    for i, (t, x) in enumerate(zip(tss, vals, strict=True)):
        out[i] = scorer.score_one(int(t), x)
    return out
