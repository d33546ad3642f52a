"""Vectorised detection across many sensors (structure-of-arrays state over numpy).

The same kernel as the per-record path runs on numpy columns, so results are
bit-identical to calling ``step`` reading by reading. Readings of one sensor inside a
batch are processed in order: the batch is split into rounds in which every sensor
appears at most once (round r holds each sensor's r-th reading).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from pipeline.detect import kernel as K
from pipeline.detect.core import SensorState, findings_from, sensor_config
from pipeline.detect.params import DetectorParams
from pipeline.findings import Finding
from pipeline.model import Sensor

_EDGE_PAIRS = (
    ("ft_old", "ft_new"),
    ("st_old", "st_new"),
    ("th_old", "th_new"),
    ("fc_old", "fc_new"),
    ("rt_old", "rt_new"),
    ("an_old", "an_new"),
    ("fl_old", "fl_new"),
)


class BatchDetector:
    """All detectors for a fixed list of sensors; state ``F[field, sensor]``.

    >>> from pipeline.model import Sensor
    >>> det = BatchDetector([Sensor("s1", "site", "ch4", "%vol", 10.0)])
    >>> det.update(np.array([0]), np.array([0]), np.array([0.3]))
    []
    """

    def __init__(self, sensors: Sequence[Sensor], params: DetectorParams | None = None) -> None:
        self.sensors = list(sensors)
        self.params = params or DetectorParams()
        n = len(self.sensors)
        self.F = np.tile(np.array(K.initial_state(), dtype=np.float64)[:, None], (1, n))
        self.C = np.array([sensor_config(s) for s in self.sensors], dtype=np.float64).T.copy()
        if n == 0:
            self.C = np.zeros((K.N_CONF, 0))

    def state(self, i: int) -> SensorState:
        """Sensor ``i``'s state as a per-record ``SensorState`` (a copy)."""
        return SensorState([float(x) for x in self.F[:, i]])

    def set_state(self, i: int, state: SensorState) -> None:
        self.F[:, i] = state.v

    def update(
        self,
        sensor_idx: np.ndarray,
        ts: np.ndarray,
        values: np.ndarray,
        quality: np.ndarray | None = None,
    ) -> list[Finding]:
        """Process readings (in arrival order); findings in the order ``step`` would give.

        ``quality`` codes: 0 good, 1 uncertain, 2 bad (default all good).
        """
        idx = np.asarray(sensor_idx, dtype=np.int64)
        tsf = np.asarray(ts, dtype=np.float64)
        xf = np.asarray(values, dtype=np.float64)
        qf = np.zeros(len(idx)) if quality is None else np.asarray(quality, dtype=np.float64)
        m = len(idx)
        if m == 0:
            return []
        order = np.argsort(idx, kind="stable")
        sidx = idx[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sidx)) + 1]
        group_start = np.repeat(starts, np.diff(np.r_[starts, m]))
        rank = np.empty(m, dtype=np.int64)
        rank[order] = np.arange(m) - group_start
        found: list[tuple[int, list[Finding]]] = []
        p = self.params
        with np.errstate(all="ignore"):
            if int(rank.max()) == 0:
                rounds = [np.arange(m)]
            else:
                by_rank = np.argsort(rank, kind="stable")
                bounds = np.r_[0, np.flatnonzero(np.diff(rank[by_rank])) + 1, m]
                rounds = [by_rank[a:b] for a, b in itertools.pairwise(bounds)]
            for rows in rounds:
                sens = idx[rows]
                v = [self.F[i, sens] for i in range(K.N_STATE)]
                c = [self.C[j, sens] for j in range(K.N_CONF)]
                o = K.sensor_step(v, c, tsf[rows], xf[rows], qf[rows], p, K.VectorOps)
                for i in range(K.N_STATE):
                    self.F[i, sens] = v[i]
                changed = np.zeros(len(rows), dtype=bool)
                for a, b in _EDGE_PAIRS:
                    changed |= o[a] != o[b]
                for j in np.flatnonzero(changed):
                    oj = {k: val[j] if isinstance(val, np.ndarray) else val for k, val in o.items()}
                    s = int(sens[j])
                    found.append(
                        (int(rows[j]), findings_from(self.sensors[s].sensor_id, oj, self.C[:, s]))
                    )
        found.sort(key=lambda t: t[0])
        return [f for _, fs in found for f in fs]

    def check_stale(self, watermark_ms: int) -> list[Finding]:
        """``check_stale`` for every sensor at once (findings in sensor order)."""
        v = [self.F[i] for i in range(K.N_STATE)]
        c = [self.C[j] for j in range(K.N_CONF)]
        with np.errstate(all="ignore"):
            fire, due = K.stale_check(v, c, float(watermark_ms), self.params, K.VectorOps)
        self.F[K.ST_ACT] = v[K.ST_ACT]
        return [
            Finding(
                self.sensors[i].sensor_id,
                "stale",
                True,
                int(due[i]),
                "yellow",
                evidence={"last_ts": int(self.F[K.SEEN_TS, i])},
            )
            for i in np.flatnonzero(fire)
        ]
