"""Context novelty of the anomaly scorer: exact bit-set bookkeeping and known answers."""

from __future__ import annotations

import numpy as np

from pipeline.detect import AnomalyScorer, DetectorParams, score_series
from pipeline.detect import kernel as K


def _decoded_pairs(v: list[float]) -> set[tuple[int, int]]:
    out = set()
    for j in range(K.CTX_WORDS):
        word = int(v[K.A_BITS + j])
        for b in range(K.CTX_WORD_BITS):
            if word >> b & 1:
                k = j * K.CTX_WORD_BITS + b
                out.add((k // K.CTX_Q, k % K.CTX_Q))
    return out


def test_seen_contexts_are_exactly_the_quantised_pairs() -> None:
    # min and max come first, so the grid is [0, 16]: level = floor(x), 16 -> 15
    rng = np.random.default_rng(3)
    x = np.r_[0.0, 16.0, rng.integers(0, 16, 300) + rng.uniform(0.0, 0.99, 300)]
    s = AnomalyScorer()
    for t, val in enumerate(x):
        s.score_one(t, float(val))
    q = np.minimum(np.floor(x), K.CTX_Q - 1).astype(int)
    expected = set(zip(q[:-1].tolist(), q[1:].tolist(), strict=True))
    assert _decoded_pairs(s.v) == expected
    assert all(s.v[K.A_BITS + j] < 2.0**K.CTX_WORD_BITS for j in range(K.CTX_WORDS))


def test_novelty_rate_tracks_new_contexts() -> None:
    p = DetectorParams()
    s = AnomalyScorer(p)
    for t in range(3000):  # a two-level pattern: 4 contexts, all learnt at once
        s.score_one(t, 10.0 * ((t // 7) % 2))
    assert s.v[K.A_NOV] < 1e-4
    assert len(_decoded_pairs(s.v)) == 4


def test_flat_middle_of_a_learnt_square_wave_is_caught_at_once() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(3000)
    x = np.where((t // 50) % 2 == 0, 0.0, 100.0) + rng.normal(0, 1.0, 3000)
    x[2000:2100] = 50.0  # stuck half-way: every value in range, the context is new
    sc = score_series(t, x)
    assert np.max(sc[800:2000]) < 0.5  # learnt: calm
    first = 2000 + int(np.argmax(sc[2000:2100] >= 0.5))
    assert sc[first] >= 0.5 and first <= 2003


def test_ops_floor_and_pow2_agree_between_scalar_and_numpy() -> None:
    a = np.array([0.0, 1.0, 5.0, 31.0, 2.5, -0.5, np.nan, 1e300])
    for name in ("floor",):
        vec = getattr(K.VectorOps, name)(a)
        sca = np.array([getattr(K.ScalarOps, name)(float(x)) for x in a])
        np.testing.assert_array_equal(vec, sca)
    b = np.array([0.0, 1.0, 5.0, 31.0, np.nan])
    vec = K.VectorOps.pow2(b)
    sca = np.array([K.ScalarOps.pow2(float(x)) for x in b])
    np.testing.assert_array_equal(vec, sca)
    assert vec[3] == 2.0**31
