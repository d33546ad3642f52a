"""The arithmetic of every detector, written once for scalars and for numpy arrays.

Why one generic kernel: the per-record path (Faust agents, ``ewarn detect``) runs it on
Python floats, the batch path (``BatchDetector``) on numpy columns of a
structure-of-arrays state. Both use only IEEE-exact operations (+ - * / sqrt, compares,
selects; no exp/log whose numpy and libm implementations may differ by an ulp), so the
two paths give bit-identical state and findings. Branches are written as ``ops.where``
selects; divisions go through ``ops.div`` so the scalar path never divides by zero.

State is a flat vector of floats (indices below); sensor configuration a second flat
vector. Ranks: -1 none, 0 blue .. 3 red. Time stamps are epoch ms held exactly in
float64 (< 2**53).
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import numpy as np

from pipeline.detect.params import DetectorParams

NAN = float("nan")

# ---- anomaly scorer sub-state (indices 0..A_SIZE-1 of every sensor state) ----------------
A_N, A_PREV, A_MU, A_DMEAN, A_DENV, A_LO, A_HI, A_VS, A_DMED, A_SUP = range(10)
A_GLO, A_GHI, A_NOV, A_NOVS = 10, 11, 12, 13  # context grid (all-time min/max), novelty rates
A_LA, A_LB, A_LLO, A_LHI, A_LMU, A_LSUP = 14, 15, 16, 17, 18, 19  # level, envelope, damping
A_SPK = 20  # u of the alarm that started the damping; negated once that event has ended
A_LF, A_LG, A_LG2 = 21, 22, 23  # n at the last alarm; the last two gaps between alarms
A_BITS = 24  # seen-context bit set: CTX_WORDS floats of CTX_WORD_BITS bits each
CTX_Q = 16  # quantisation levels of the context grid
CTX_WORD_BITS = 32  # bits held exactly per float (integers < 2**32)
CTX_WORDS = CTX_Q * CTX_Q // CTX_WORD_BITS
A_XD = A_BITS + CTX_WORDS  # side of the current excursion beyond the value envelope (+1 / -1 / 0)
A_XP = A_XD + 1  # ... and its peak so far
A_PH = A_XD + 2  # the 3 highest peaks of past excursions above the envelope (NaN: fewer)
A_PL = A_XD + 5  # the 3 lowest peaks of past excursions below it
A_SIZE = A_XD + 8
# ---- sensor state (after the scorer) -----------------------------------------------------
SEEN_TS, LEARN_TS, REF = A_SIZE, A_SIZE + 1, A_SIZE + 2
TL = A_SIZE + 3  # long trend: S0, St, Sv, Stt, Stv, Svv, last clip sign (7 fields)
TS = TL + 7  # short trend (7 fields)
TH_LVL, TH_PEND, FC_LVL, RT_ACT, AN_LVL, AN_OFF = range(TS + 7, TS + 13)
ST_ACT, FL_VAL, FL_SINCE, FL_SCALE, FL_ACT, FT_ACT = range(TS + 13, TS + 19)
N_STATE = TS + 19

FIELD_NAMES: tuple[str, ...] = (
    "a_n",
    "a_prev",
    "a_mu",
    "a_dmean",
    "a_denv",
    "a_lo",
    "a_hi",
    "a_vs",
    "a_dmed",
    "a_sup",
    "a_glo",
    "a_ghi",
    "a_nov",
    "a_novs",
    "a_la",
    "a_lb",
    "a_llo",
    "a_lhi",
    "a_lmu",
    "a_lsup",
    "a_spk",
    "a_lf",
    "a_lg",
    "a_lg2",
    *(f"a_ctx{i}" for i in range(CTX_WORDS)),
    "a_xd",
    "a_xp",
    "a_ph1",
    "a_ph2",
    "a_ph3",
    "a_pl1",
    "a_pl2",
    "a_pl3",
    "seen_ts",
    "learn_ts",
    "ref",
    "tl_s0",
    "tl_st",
    "tl_sv",
    "tl_stt",
    "tl_stv",
    "tl_svv",
    "tl_clip",
    "ts_s0",
    "ts_st",
    "ts_sv",
    "ts_stt",
    "ts_stv",
    "ts_svv",
    "ts_clip",
    "th_lvl",
    "th_pend",
    "fc_lvl",
    "rt_act",
    "an_lvl",
    "an_off",
    "st_act",
    "fl_val",
    "fl_since",
    "fl_scale",
    "fl_act",
    "ft_act",
)
assert len(FIELD_NAMES) == N_STATE


def initial_state() -> list[float]:
    v = [0.0] * N_STATE
    scorer_nan = (A_PREV, A_MU, A_LO, A_HI, A_GLO, A_GHI, A_LA, A_LB, A_LLO, A_LHI, A_LMU)
    for i in (*scorer_nan, *range(A_XP, A_SIZE), SEEN_TS, LEARN_TS, REF, TH_PEND, FL_VAL, FL_SINCE):
        v[i] = NAN
    for i in (TH_LVL, FC_LVL, AN_LVL):
        v[i] = -1.0
    v[A_NOV] = 1.0  # everything is novel at first
    return v


def initial_scorer() -> list[float]:
    return initial_state()[:A_SIZE]


def pack(vals: list[float]) -> dict[str, Any]:
    """A state vector as JSON-safe text: little-endian float64, base64 (8 B per field).

    Why binary: exact (NaN included) and ~35 % smaller than a JSON list of floats, so
    every table write of the per-record path stays cheap.
    """
    return {"b": base64.b64encode(struct.pack(f"<{len(vals)}d", *vals)).decode("ascii")}


def unpack(d: dict[str, Any]) -> list[float]:
    """Inverse of ``pack``; also reads the older ``{"v": [float | None, ...]}`` form."""
    if "b" in d:
        raw = base64.b64decode(d["b"], validate=True)
        if len(raw) % 8:
            raise ValueError(f"state has {len(raw)} bytes, not a whole number of floats")
        return list(struct.unpack(f"<{len(raw) // 8}d", raw))
    return [math.nan if x is None else float(x) for x in d["v"]]


LAYOUT2_FIELDS = A_BITS - A_LA  # fields added in state layout 2 (level, re-arming)
LAYOUT3_FIELDS = A_SIZE - A_XD  # fields added in state layout 3 (excursion peaks)


def upgrade(vals: list[float]) -> list[float]:
    """A state (or scorer state) stored by layout 1 or 2 in the current layout.

    Why: a worker upgrade must keep what every sensor has learnt, not crash on the
    table's old rows or start all sensors cold. The level component starts from the
    learnt raw level and the raw envelope (wider than the level's: no false alarm);
    the excursion peaks start empty (every excursion is new, as before the upgrade).
    Vectors of the current length are returned as they are.
    """
    old = LAYOUT2_FIELDS + LAYOUT3_FIELDS
    if len(vals) in (A_SIZE - old, N_STATE - old):
        mu, lo, hi = vals[A_MU], vals[A_LO], vals[A_HI]
        # an alarm damped under layout 1 re-arms only for a far larger event (u unknown)
        vals = [*vals[:A_LA], mu, mu, lo, hi, mu, 0.0, 1e6, 0.0, 0.0, 0.0, *vals[A_LA:]]
    if len(vals) in (A_SIZE - LAYOUT3_FIELDS, N_STATE - LAYOUT3_FIELDS):
        vals = [*vals[:A_XD], 0.0, *([NAN] * (LAYOUT3_FIELDS - 1)), *vals[A_XD:]]
    return vals


# ---- sensor configuration vector --------------------------------------------------------
C_SIGN, C_L0, C_HYST, C_DELAY, C_RATE, C_RATE_LVL, C_INTERVAL, C_LO, C_HI = (
    0,
    1,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
)
N_CONF = 12

Q_GOOD, Q_UNCERTAIN, Q_BAD = 0.0, 1.0, 2.0
FAULT_RANGE, FAULT_QUALITY = 1.0, 2.0


class ScalarOps:
    """Selects and guards on Python floats (NaN-propagating like numpy)."""

    @staticmethod
    def where(c: Any, a: Any, b: Any) -> Any:
        return a if c else b

    @staticmethod
    def maximum(a: Any, b: Any) -> Any:
        return a if (a >= b or a != a) else b

    @staticmethod
    def minimum(a: Any, b: Any) -> Any:
        return a if (a <= b or a != a) else b

    @staticmethod
    def sqrt(a: Any) -> Any:
        return math.sqrt(a) if a > 0.0 else (a if a != a else 0.0)

    @staticmethod
    def isnan(a: Any) -> Any:
        return a != a

    @staticmethod
    def not_(a: Any) -> Any:
        return not a

    @staticmethod
    def div(num: Any, den: Any, default: Any) -> Any:
        return num / den if den != 0.0 and den == den else default

    @staticmethod
    def floor(a: Any) -> Any:
        return float(math.floor(a)) if math.isfinite(a) else a

    @staticmethod
    def pow2(a: Any) -> Any:
        """2**a for a small non-negative integer-valued ``a`` (exact); NaN passes."""
        return math.ldexp(1.0, int(a)) if a == a else a


class VectorOps:
    """The same verbs on numpy arrays."""

    @staticmethod
    def where(c: Any, a: Any, b: Any) -> Any:
        return np.where(c, a, b)

    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def sqrt(a: Any) -> Any:
        return np.sqrt(np.maximum(a, 0.0))

    isnan = staticmethod(np.isnan)

    @staticmethod
    def not_(a: Any) -> Any:
        return ~a

    @staticmethod
    def div(num: Any, den: Any, default: Any) -> Any:
        ok = (den != 0.0) & ~np.isnan(den)
        return np.where(ok, num / np.where(ok, den, 1.0), default)

    floor = staticmethod(np.floor)

    @staticmethod
    def pow2(a: Any) -> Any:
        ok = ~np.isnan(a)
        return np.where(ok, np.ldexp(1.0, np.where(ok, a, 0.0).astype(np.int64)), a)


Ops = type[ScalarOps] | type[VectorOps]


# ---- anomaly score ------------------------------------------------------------------------
def _calibrated(u: Any, p: DetectorParams, ops: Ops) -> Any:
    """u^p / (1 + u^p): u = 1 ("rare under normal behaviour") maps to 0.5."""
    u = ops.minimum(u, 1e6)  # no overflow to inf (inf / inf would be NaN)
    u = u if p.anomaly_power == 1.0 else (u * u if p.anomaly_power == 2.0 else u**p.anomaly_power)
    return u / (1.0 + u)


def _power(a: Any, e: float, ops: Ops) -> Any:
    """a**e for a >= 0; 0.5 and 0.75 (the default) by square roots, cheap and exact."""
    if e == 0.5:
        return ops.sqrt(a)
    if e == 0.75:
        r = ops.sqrt(a)
        return r * ops.sqrt(r)
    return a**e


def score_update(v: Any, x: Any, learn: Any, p: DetectorParams, ops: Ops) -> Any:
    """Score ``x`` against the sub-state ``v[0:A_SIZE]`` (before learning), then learn.

    Components, each scaled so that u = 1 means "rare under normal behaviour":
    range (x outside the slowly relaxing min/max envelope of recent values: steps, drift,
    distribution rarity that survives daily cycles), spike (|diff| beyond the envelope of
    recent |diff|), collapse (recent |diff| far below its long-run median: flat segments,
    variance loss), context novelty (a never-seen pair of quantised previous/current
    values, scored against the recent rate of new pairs: periodic patterns that break
    without leaving their range), level (a heavily smoothed level outside its own slowly
    relaxing envelope: a day, shift or week whose level differs from usual although each
    value stays in range; holidays, slow drifts, a machine running cool; scored only once
    it is rare, u >= 1). A range excursion no further than three recent excursions went
    (their peaks kept per side, fading) is recurrent and counts 1/``anomaly_recur_div``:
    bursty counts burst. score = u^p / (1 + u^p); zero during warm-up; after a detection
    the score is scaled down for ``anomaly_suppress_n`` samples (one alarm per event); the
    level has its own damping counter, set by any alarm, so that a level alarm never
    damps a sharper event that follows.
    Learning is gated (``learn``) and clipped to the envelopes, so outliers teach slowly.
    """
    n, prev, mu = v[A_N], v[A_PREV], v[A_MU]
    dmean, denv, lo, hi = v[A_DMEAN], v[A_DENV], v[A_LO], v[A_HI]
    vs, dmed, sup = v[A_VS], v[A_DMED], v[A_SUP]
    first = n < 0.5
    d = ops.where(first, 0.0, x - prev)
    ad = abs(d)
    floor = 1e-9 * (1.0 + abs(ops.where(first, x, mu)))
    width = ops.maximum(hi - lo, floor)
    excess = ops.maximum(ops.maximum(x - hi, lo - x), 0.0)
    u_range = excess / (p.anomaly_k_range * width)
    # A series that has never been negative (counts, bytes, CPU %, concentrations) has a
    # spread that grows with its level, so its bursts upward are larger than its dips.
    # Its excess is measured on x**anomaly_range_power (between raw and the Poisson
    # variance-stabilising sqrt): an upward burst weighs less, a fall toward zero more;
    # nearly affine far from zero (O2 at 20.9 %, a tank at 70 %), so little changes there.
    glo, ghi = v[A_GLO], v[A_GHI]
    glo_new = ops.where(first, x, ops.minimum(glo, x))
    if p.anomaly_range_power != 1.0:
        e = p.anomaly_range_power
        px, plo, phi = (_power(ops.maximum(a, 0.0), e, ops) for a in (x, lo, hi))
        pexcess = ops.maximum(ops.maximum(px - phi, plo - px), 0.0)
        u_pow = ops.div(pexcess, p.anomaly_k_range * (phi - plo), 0.0)
        u_range = ops.where((glo_new >= 0.0) & (hi - lo > floor), u_pow, u_range)
    # An excursion to where at least ``anomaly_recur_k`` earlier excursions beyond the
    # envelope already went (their peaks, fading) is recurrent, not rare: its range u counts
    # ``1/anomaly_recur_div`` (bursty counts: a day's burst as high as three earlier
    # ones). Only one far beyond the envelope (u >= div, as for re-arming) still alarms.
    out_up = ops.not_(first) & (x > hi)
    out_dn = ops.not_(first) & (x < lo)
    kk = A_PH + int(p.anomaly_recur_k) - 1
    recur = (out_up & (x <= v[kk])) | (out_dn & (x >= v[kk + 3]))
    u_range = ops.where(recur, u_range / p.anomaly_recur_div, u_range)
    u_spike = ops.maximum(ad - denv, 0.0) / (p.anomaly_k_spike * ops.maximum(denv, floor))
    vs_new = vs + (ad - vs) / p.anomaly_short_n
    informative = dmed > 0.05 * denv
    u_col = ops.where(informative, dmed / (p.anomaly_k_collapse * ops.maximum(vs_new, floor)), 0.0)
    # ---- context novelty: (quantised previous, quantised current) never seen before ----
    nov = v[A_NOV]
    ghi_new = ops.where(first, x, ops.maximum(ghi, x))
    qscale = ops.div(float(CTX_Q), ghi_new - glo_new, 0.0)
    qx = ops.minimum(ops.floor((x - glo_new) * qscale), CTX_Q - 1.0)
    qp = ops.minimum(ops.maximum(ops.floor((prev - glo_new) * qscale), 0.0), CTX_Q - 1.0)
    k = qp * float(CTX_Q) + qx
    word = ops.floor(k / float(CTX_WORD_BITS))
    bitv = ops.pow2(k - word * float(CTX_WORD_BITS))
    w = 0.0
    for j in range(CTX_WORDS):
        w = ops.where(word == float(j), v[A_BITS + j], w)
    m = ops.floor(w / bitv)
    novel = ops.not_(first) & (m - 2.0 * ops.floor(m * 0.5) < 0.5)
    nov1 = ops.where(novel, 1.0, 0.0)
    nov_new = ops.where(first, nov, nov + (nov1 - nov) / p.anomaly_ctx_tau_n)
    novs = v[A_NOVS]
    novs_new = novs + (nov1 - novs) / p.anomaly_short_n
    burst = ops.minimum(novs_new * p.anomaly_short_n / p.anomaly_ctx_burst, 1.0)
    # background rate: without the novelties of the current burst (each added ~1/tau)
    nov_bg = ops.maximum(nov - novs * p.anomaly_short_n / p.anomaly_ctx_tau_n, 0.0)
    rate = nov_bg + 1.0 / p.anomaly_ctx_tau_n  # Laplace-like floor: one per memory length
    u_ctx = ops.where(novel, p.anomaly_ctx_rare * burst / rate, 0.0)
    w_new = ops.where(novel, w + bitv, w)
    # ---- level: two-pole EW mean of the clipped value against its own envelope ----------
    warm = n >= p.anomaly_warmup_n
    xc = ops.where(warm, ops.minimum(ops.maximum(x, lo), hi), x)  # spikes do not move it
    lt = p.anomaly_level_n
    la_new = ops.where(first, x, v[A_LA] + (xc - v[A_LA]) / lt)
    lb_new = ops.where(first, x, v[A_LB] + (la_new - v[A_LB]) / lt)
    llo, lhi, lmu = v[A_LLO], v[A_LHI], v[A_LMU]
    lwarm = n >= p.anomaly_level_warmup * lt
    lwidth = ops.maximum(lhi - llo, p.anomaly_level_floor * width)
    lexcess = ops.maximum(ops.maximum(lb_new - lhi, llo - lb_new), 0.0)
    u_lvl = ops.where(lwarm, ops.div(lexcess, p.anomaly_k_range * lwidth, 0.0), 0.0)
    # ---- calibration and damping ------------------------------------------------------
    # The level is a decision, not a gradient: its slow run-up below "rare" is not scored
    # (it would only add near-threshold noise), and it has its own damping counter, so a
    # level alarm never hides a sharper event that follows (any alarm damps the level).
    # Damping means one alarm per event, but once that event has ended (u back below 1),
    # an event at least ``anomaly_rearm`` times as far (in u) as the one that raised the
    # alarm is a new event: it alarms at once. (A growing event, e.g. a collapse that
    # deepens while a sensor sticks, never ends in between: it stays one alarm.)
    # An alarm that comes at the same interval after the last one as the two alarms
    # before it (three equal gaps) is a schedule (a daily job, a batch cycle), not an
    # anomaly: damped. (Two equal gaps happen by chance among random alarms.)
    u = ops.maximum(ops.maximum(ops.maximum(u_range, u_spike), u_col), u_ctx)
    raw = _calibrated(ops.where(first, 0.0, u), p, ops)
    raw = ops.where(warm, raw, 0.0)
    raw_l = _calibrated(ops.where(u_lvl >= 1.0, u_lvl, 0.0), p, ops)
    lsup = v[A_LSUP]
    suppressed = sup > 0.5
    l_suppressed = lsup > 0.5
    damp = p.anomaly_suppress_factor
    spk = v[A_SPK]
    rearmed = suppressed & (spk < 0.0) & (u >= -p.anomaly_rearm * spk) & (raw >= 0.5)
    damped = suppressed & ops.not_(rearmed)
    out = ops.maximum(
        ops.where(damped, raw * damp, raw), ops.where(l_suppressed, raw_l * damp, raw_l)
    )
    fire = ops.not_(damped) & (raw >= 0.5)
    lf, lg, lg2 = v[A_LF], v[A_LG], v[A_LG2]
    gap = n - lf
    tol = p.anomaly_period_tol
    periodic = fire & (lg2 > 0.0) & (abs(gap - lg) <= tol * lg) & (abs(lg - lg2) <= tol * lg2)
    out = ops.where(periodic, out * damp, out)
    new_lg2 = ops.where(fire, lg, lg2)
    new_lg = ops.where(fire, ops.where(lf > 0.0, gap, 0.0), lg)
    new_lf = ops.where(fire, n, lf)
    l_fire = ops.not_(l_suppressed) & (raw_l >= 0.5)
    n_sup = float(p.anomaly_suppress_n)
    new_sup = ops.where(fire, n_sup, ops.where(suppressed, sup - 1.0, 0.0))
    ended = suppressed & (spk > 0.0) & (u < 1.0)
    new_spk = ops.where(fire, u, ops.where(ended, -spk, spk))
    new_lsup = ops.where(l_suppressed, lsup - 1.0, ops.where(l_fire, n_sup, 0.0))
    new_lsup = ops.where(fire, ops.maximum(new_lsup, n_sup), new_lsup)
    # ---- excursion peaks: the running peak of the current excursion; when it ends, its
    # peak enters the sorted top 3 of its side (excursions of the warm-up are not kept)
    xd, xp = v[A_XD], v[A_XP]
    up_on = (xd > 0.5) & out_up
    dn_on = (xd < -0.5) & out_dn
    xp_new = ops.where(up_on, ops.maximum(xp, x), ops.where(dn_on, ops.minimum(xp, x), x))
    xd_new = ops.where(warm & out_up, 1.0, ops.where(warm & out_dn, -1.0, 0.0))
    end_up = (xd > 0.5) & ops.not_(out_up)
    end_dn = (xd < -0.5) & ops.not_(out_dn)
    ph = [v[A_PH + j] for j in range(3)]
    pl = [v[A_PL + j] for j in range(3)]
    gt = [end_up & ((xp > ph[j]) | ops.isnan(ph[j])) for j in range(3)]
    lt_ = [end_dn & ((xp < pl[j]) | ops.isnan(pl[j])) for j in range(3)]
    ph_new = (
        ops.where(gt[0], xp, ph[0]),
        ops.where(gt[0], ph[0], ops.where(gt[1], xp, ph[1])),
        ops.where(gt[1], ph[1], ops.where(gt[2], xp, ph[2])),
    )
    pl_new = (
        ops.where(lt_[0], xp, pl[0]),
        ops.where(lt_[0], pl[0], ops.where(lt_[1], xp, pl[1])),
        ops.where(lt_[1], pl[1], ops.where(lt_[2], xp, pl[2])),
    )
    # ---- learning ----
    mu_new = ops.where(first, x, mu + (xc - mu) / p.anomaly_tau_n)
    adc = ops.where(warm, ops.minimum(ad, 3.0 * denv), ad)
    dmean_new = ops.where(first, 0.0, dmean + (adc - dmean) / p.anomaly_tau_n)
    gain = ops.where(warm, p.anomaly_env_gain, 1.0)
    leak = 1.0 / p.anomaly_env_leak_n
    vl = 1.0 / p.anomaly_value_leak_n
    # |diff| envelope = decaying record of the largest recent |diff| (gain 1): a spike no
    # larger than recent spikes is not rare (recurring jumps, daily edges do not re-alarm)
    denv_new = ops.where(ad > denv, ad, denv + (dmean_new - denv) * leak)
    # the value envelope relaxes more slowly (anomaly_value_leak_n, see params)
    hi_new = ops.where(first, x, ops.where(x > hi, hi + gain * (x - hi), hi + (mu_new - hi) * vl))
    lo_new = ops.where(first, x, ops.where(x < lo, lo + gain * (x - lo), lo + (mu_new - lo) * vl))
    # excursion peaks fade toward the envelope (``anomaly_recur_leak_n``): recurrence is
    # judged on recent behaviour, so a height last reached long ago alarms again
    rl = 1.0 / p.anomaly_recur_leak_n
    ph_new = tuple(ops.where(h > hi_new, h + (hi_new - h) * rl, h) for h in ph_new)
    pl_new = tuple(ops.where(q < lo_new, q + (lo_new - q) * rl, q) for q in pl_new)
    # the level envelope follows at the level's own pace, and takes a flagged level at once
    # (one alarm per level event; a slow creep must not re-alarm after every suppression)
    lgain = ops.where(lwarm & (u_lvl < p.anomaly_level_absorb), 1.0 / lt, 1.0)
    lbc = ops.where(lwarm, ops.minimum(ops.maximum(lb_new, llo), lhi), lb_new)
    lmu_new = ops.where(first, x, lmu + (lbc - lmu) / p.anomaly_tau_n)
    lhi_new = ops.where(
        first,
        x,
        ops.where(lb_new > lhi, lhi + lgain * (lb_new - lhi), lhi + (lmu_new - lhi) * leak),
    )
    llo_new = ops.where(
        first,
        x,
        ops.where(lb_new < llo, llo + lgain * (lb_new - llo), llo + (lmu_new - llo) * leak),
    )
    step = 0.02 * ops.maximum(dmed, 0.1 * dmean_new)
    dmed_new = ops.maximum(ops.where(ad > dmed, dmed + step, dmed - step), 0.0)
    dmed_new = ops.where(n < 1.5, ad, dmed_new)
    ups = (
        (A_N, n + 1.0),
        (A_PREV, x),
        (A_MU, mu_new),
        (A_DMEAN, dmean_new),
        (A_DENV, denv_new),
        (A_LO, lo_new),
        (A_HI, hi_new),
        (A_VS, vs_new),
        (A_DMED, dmed_new),
        (A_SUP, new_sup),
        (A_GLO, glo_new),
        (A_GHI, ghi_new),
        (A_NOV, nov_new),
        (A_NOVS, novs_new),
        (A_LA, la_new),
        (A_LB, lb_new),
        (A_LLO, llo_new),
        (A_LHI, lhi_new),
        (A_LMU, lmu_new),
        (A_LSUP, new_lsup),
        (A_SPK, new_spk),
        (A_LF, new_lf),
        (A_LG, new_lg),
        (A_LG2, new_lg2),
        (A_XD, xd_new),
        (A_XP, xp_new),
        *((A_PH + j, ph_new[j]) for j in range(3)),
        *((A_PL + j, pl_new[j]) for j in range(3)),
    )
    for i, val in ups:
        v[i] = ops.where(learn, val, v[i])
    for j in range(CTX_WORDS):
        here = word == float(j)
        v[A_BITS + j] = ops.where(learn & here, w_new, v[A_BITS + j])
    return out


# ---- EW weighted least squares trend ------------------------------------------------------
def trend_fit(s0: Any, st: Any, sv: Any, stt: Any, stv: Any, svv: Any, ops: Ops) -> Any:
    """Slope, intercept at t=0, slope t-statistic, R^2 of the weighted fit (t in minutes)."""
    mt = ops.div(st, s0, 0.0)
    mv = ops.div(sv, s0, 0.0)
    stt_c = ops.maximum(stt - st * mt, 0.0)
    stv_c = stv - st * mv
    svv_c = ops.maximum(svv - sv * mv, 0.0)
    b = ops.div(stv_c, stt_c, 0.0)
    a = mv - b * mt
    rss = ops.maximum(svv_c - b * stv_c, 0.0)
    var = ops.div(rss, s0 - 2.0, 0.0)
    var = ops.where(s0 > 2.0, var, 0.0)
    var = ops.maximum(var, 1e-24 * (1.0 + a * a))
    se = ops.sqrt(ops.div(var, stt_c, 0.0))
    t = ops.div(b, se, 0.0)
    r2 = ops.where(svv_c > 0.0, 1.0 - ops.div(rss, svv_c, 1.0), 0.0)
    return b, a, t, r2, var


def trend_update(
    v: Any, base: int, dt_min: Any, y: Any, tau_min: float, clip_k: float, learn: Any, ops: Ops
) -> Any:
    """Shift the time origin to the new sample, clip its residual, decay, add it.

    The clip is Huber-like but only for isolated outliers: a residual beyond k sigma is
    clipped unless the previous sample was clipped in the same direction, so a spike is
    ignored while a real step or knee (even in noise-free data) is followed at once.
    Returns the fit *after* adding the sample (slope per minute, value now, t, R^2, n).
    The decay is the rational ``tau/(tau+dt)`` (exact arithmetic, irregular-sampling safe).
    """
    s0, st, sv, stt, stv, svv = (v[base + i] for i in range(6))
    last_clip = v[base + 6]
    st1 = st - dt_min * s0
    stt1 = stt - 2.0 * dt_min * st + dt_min * dt_min * s0
    stv1 = stv - dt_min * sv
    _, a0, _, _, var0 = trend_fit(s0, st1, sv, stt1, stv1, svv, ops)
    sig = ops.sqrt(var0)
    lo = a0 - clip_k * sig
    hi = a0 + clip_k * sig
    sgn = ops.where(y > hi, 1.0, ops.where(y < lo, -1.0, 0.0))
    clip = (s0 >= 5.0) & (sgn != 0.0) & (sgn != last_clip)
    yc = ops.where(clip, ops.minimum(ops.maximum(y, lo), hi), y)
    v[base + 6] = ops.where(learn, ops.where(clip, sgn, 0.0), last_clip)
    dec = tau_min / (tau_min + dt_min)
    new = (
        s0 * dec + 1.0,
        st1 * dec,
        sv * dec + yc,
        stt1 * dec,
        stv1 * dec,
        svv * dec + yc * yc,
    )
    for i in range(6):
        v[base + i] = ops.where(learn, new[i], v[base + i])
    b, a, t, r2, _ = trend_fit(
        v[base], v[base + 1], v[base + 2], v[base + 3], v[base + 4], v[base + 5], ops
    )
    return b, a, t, r2, v[base]


# ---- the sensor step ---------------------------------------------------------------------
def sensor_step(
    v: Any, c: Any, ts: Any, x: Any, q: Any, p: DetectorParams, ops: Ops
) -> dict[str, Any]:
    """Advance every detector of one sensor (or a vector of sensors) by one reading.

    Returns the outputs needed to build findings: old/new codes per kind plus values.
    """
    seen = v[SEEN_TS]
    has_seen = ops.not_(ops.isnan(seen))
    late = has_seen & (ts <= seen)
    ignore = has_seen & (ts < seen - p.late_tolerance_s * 1000.0)
    keep = ops.not_(ignore)
    edge_ts = ops.where(late, seen, ts)
    # ---- fault: quality bad or outside the physical range -------------------------------
    out_range = (x < c[C_LO]) | (x > c[C_HI])
    reason = ops.where(q == Q_BAD, FAULT_QUALITY, ops.where(out_range, FAULT_RANGE, 0.0))
    ft_old = v[FT_ACT]
    v[FT_ACT] = ops.where(keep, reason, ft_old)
    fault = reason > 0.0
    # ---- stale clears on any reading -----------------------------------------------------
    st_old = v[ST_ACT]
    v[ST_ACT] = ops.where(keep, 0.0, st_old)
    v[SEEN_TS] = ops.where(keep, ops.where(has_seen, ops.maximum(seen, ts), ts), seen)
    evaluable = keep & ops.not_(fault)
    learn = evaluable & (q == Q_GOOD) & ops.not_(late)
    # ---- threshold (oriented so that "high" logic covers both directions) ---------------
    sign = c[C_SIGN]
    y = sign * x
    cur = v[TH_LVL]
    raw = -1.0
    held = -1.0
    for k in range(4):
        lim = c[C_L0 + k]
        raw = ops.where(y >= lim, float(k), raw)
        held = ops.where((cur >= k) & (y > lim - c[C_HYST]), float(k), held)
    tgt = ops.maximum(raw, held)
    raising = tgt > cur
    pend_old = v[TH_PEND]
    pend = ops.where(raising, ops.where(ops.isnan(pend_old), edge_ts, pend_old), NAN)
    ok = raising & (edge_ts - pend >= c[C_DELAY])
    th_new = ops.where(raising, ops.where(ok, tgt, cur), tgt)
    th_new = ops.where(evaluable, th_new, cur)
    v[TH_LVL] = th_new
    v[TH_PEND] = ops.where(evaluable, ops.where(ok, NAN, pend), pend_old)
    # ---- trends (learned only from good, in-order, non-faulty readings) -----------------
    ref = ops.where(ops.isnan(v[REF]), x, v[REF])
    v[REF] = ops.where(learn, ref, v[REF])
    lts = v[LEARN_TS]
    dt_min = ops.where(ops.isnan(lts), 0.0, (ts - lts) / 60000.0)
    v[LEARN_TS] = ops.where(learn, ts, lts)
    yr = x - ref
    bl, al, tl, r2l, nl = trend_update(
        v, TL, dt_min, yr, p.trend_tau_s / 60.0, p.trend_clip_k, learn, ops
    )
    bs, _, tsh, _, ns = trend_update(
        v, TS, dt_min, yr, p.rate_tau_s / 60.0, p.trend_clip_k, learn, ops
    )
    # ---- forecast -----------------------------------------------------------------------
    bo = sign * bl
    to = sign * tl
    now_o = sign * (al + ref)
    ftgt = -1.0
    for k in (3, 2, 1, 0):
        lim = c[C_L0 + k]
        ftgt = ops.where((lim > now_o) & (th_new < k), float(k), ftgt)
    fc_old = v[FC_LVL]
    lim_t = NAN
    lim_a = NAN
    for k in range(4):
        lim_t = ops.where(ftgt == k, c[C_L0 + k], lim_t)
        lim_a = ops.where(fc_old == k, c[C_L0 + k], lim_a)
    rising = bo > 0.0
    eta_t = ops.where(rising, ops.div(lim_t - now_o, bo, NAN) * 60.0, NAN)
    eta_a = ops.where(rising, ops.div(lim_a - now_o, bo, NAN) * 60.0, NAN)
    fc_on = (
        (ftgt >= 0.0)
        & rising
        & (to >= p.forecast_t_on)
        & (nl >= p.forecast_min_n)
        & (r2l >= p.forecast_r2_min)
        & (eta_t <= p.forecast_horizon_s)
    )
    fc_keep = (
        (fc_old >= 0.0)
        & (th_new < fc_old)
        & rising
        & (to >= p.forecast_t_off)
        & (eta_a <= p.forecast_off_horizon * p.forecast_horizon_s)
    )
    reached = (fc_old >= 0.0) & (th_new >= fc_old)
    fc_new = ops.where(reached, -1.0, ops.where(fc_keep, fc_old, ops.where(fc_on, ftgt, -1.0)))
    fc_new = ops.where(learn, fc_new, fc_old)
    v[FC_LVL] = fc_new
    eta = ops.where(fc_new == ftgt, eta_t, eta_a)
    # ---- rate of change -----------------------------------------------------------------
    mag = abs(bs)
    rt_old = v[RT_ACT]
    rt_on = (mag >= c[C_RATE]) & (abs(tsh) >= p.rate_t_min) & (ns >= p.rate_min_n)
    rt_keep = (rt_old > 0.5) & (mag >= c[C_RATE] * p.rate_off_frac)
    rt_new = ops.where(rt_on | rt_keep, 1.0, 0.0)
    rt_new = ops.where(learn, rt_new, rt_old)
    v[RT_ACT] = rt_new
    # ---- flatline (snapshot of learnt variability at the start of the run) --------------
    dmean_before = v[A_DMEAN]
    fl_val = v[FL_VAL]
    stuck = abs(x - fl_val) <= p.flatline_eps_rel * ops.maximum(abs(fl_val), 1.0)
    fl_since = v[FL_SINCE]
    fl_on = (
        stuck
        & (ts - fl_since >= p.flatline_window_s * 1000.0)
        & (v[FL_SCALE] > p.flatline_min_scale)
    )
    fl_old = v[FL_ACT]
    fl_new = ops.where(stuck, ops.where(fl_on | (fl_old > 0.5), 1.0, 0.0), 0.0)
    v[FL_VAL] = ops.where(learn, ops.where(stuck, fl_val, x), fl_val)
    v[FL_SINCE] = ops.where(learn, ops.where(stuck, fl_since, ts), fl_since)
    v[FL_SCALE] = ops.where(learn, ops.where(stuck, v[FL_SCALE], dmean_before), v[FL_SCALE])
    fl_new = ops.where(learn, fl_new, fl_old)
    v[FL_ACT] = fl_new
    # ---- anomaly score (scored when evaluable, learnt when good) ------------------------
    score = score_update(v, x, learn, p, ops)
    score = ops.where(evaluable, score, 0.0)
    an_old = v[AN_LVL]
    an_off = v[AN_OFF]
    lvl_s = ops.where(score >= p.anomaly_yellow, 1.0, 0.0)
    active = an_old >= 0.0
    below = score < p.anomaly_off
    off_n = ops.where(active & below, an_off + 1.0, 0.0)
    cleared = active & (off_n >= p.anomaly_off_n)
    hi_score = score >= p.anomaly_on
    an_new = ops.where(
        active,
        ops.where(cleared, -1.0, ops.where(hi_score, ops.maximum(an_old, lvl_s), an_old)),
        ops.where(hi_score, lvl_s, -1.0),
    )
    v[AN_LVL] = ops.where(learn, an_new, an_old)
    v[AN_OFF] = ops.where(learn, ops.where(cleared, 0.0, off_n), an_off)
    return {
        "edge_ts": edge_ts,
        "value": x,
        "ft_old": ft_old,
        "ft_new": v[FT_ACT],
        "st_old": st_old,
        "st_new": v[ST_ACT],
        "th_old": cur,
        "th_new": v[TH_LVL],
        "fc_old": fc_old,
        "fc_new": v[FC_LVL],
        "eta": eta,
        "slope": bl,
        "t_stat": to,
        "rt_old": rt_old,
        "rt_new": v[RT_ACT],
        "rate": bs,
        "fl_old": fl_old,
        "fl_new": v[FL_ACT],
        "fl_since": v[FL_SINCE],
        "an_old": an_old,
        "an_new": v[AN_LVL],
        "score": score,
    }


def stale_check(v: Any, c: Any, watermark: Any, p: DetectorParams, ops: Ops) -> Any:
    """Open ``stale`` when the watermark passed last_seen + factor*interval; returns due ts."""
    due = v[SEEN_TS] + p.stale_factor * c[C_INTERVAL]
    fire = (v[ST_ACT] < 0.5) & ops.not_(ops.isnan(v[SEEN_TS])) & (watermark > due)
    v[ST_ACT] = ops.where(fire, 1.0, v[ST_ACT])
    return fire, due
