"""Tunables of the detection core: one frozen set for all sensors (never per-sensor tuning)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """All detector tunables with their defaults; see ``bench/README.md`` for the why.

    Time constants are in seconds of event time (trend) or in samples (anomaly scorer,
    which must also serve unit-free series such as NAB's).
    """

    # --- trend (forecast) --------------------------------------------------------------
    trend_tau_s: float = 600.0  # EW least-squares memory: ~10 min of readings
    trend_clip_k: float = 3.0  # Huber-like clip of residuals at k sigma before learning
    forecast_horizon_s: float = 1800.0  # warn when the crossing is due within 30 min
    forecast_t_on: float = 6.0  # slope t-statistic to open (white noise: ~never)
    forecast_t_off: float = 3.0  # ... and to keep the episode (hysteresis)
    forecast_r2_min: float = 0.5  # fitted line must explain half the variance
    forecast_min_n: float = 10.0  # effective samples (EW weight sum) before any forecast
    forecast_off_horizon: float = 1.5  # keep while eta <= 1.5 x horizon
    # --- rate of change ----------------------------------------------------------------
    rate_tau_s: float = 120.0  # short EW trend: the rate is a 2-minute robust slope
    rate_t_min: float = 3.0  # slope must be significant, not one noisy difference
    rate_min_n: float = 5.0
    rate_off_frac: float = 0.8  # clears below 80 % of the limit
    # --- anomaly score (univariate, count-based) ---------------------------------------
    anomaly_warmup_n: int = 30  # score 0 while the envelopes are still being learnt
    anomaly_tau_n: float = 200.0  # memory of level / mean |diff| (samples)
    anomaly_env_leak_n: float = 1500.0  # jump and level envelopes relax over this many samples
    # The value envelope relaxes more slowly: a range the series reached a while ago is
    # still its range. Chosen on nab-dev + 22 held-out NAB series together (unchanged on
    # nab-dev, +1.6 held out), confirmed on 12 more held-out series (+4.8, bench/README).
    anomaly_value_leak_n: float = 2000.0
    anomaly_env_gain: float = 0.3  # how fast an out-of-envelope value widens it (slow learning)
    # Range excess of never-negative series on x**0.75: their spread grows with the level
    # (counts, bytes, CPU %). 0.5 (Poisson's sqrt) over-compresses bursts; 1.0: off.
    # Chosen on all 58 NAB series (0.6-0.8 all gain; bench/README.md).
    anomaly_range_power: float = 0.75
    # An excursion beyond the value envelope to where 3 earlier excursions went is
    # recurrent: its range u counts 1/4 (4 as for re-arming: only one far beyond the
    # envelope still alarms). 3: one or two earlier glitches do not mask a new event.
    # Chosen on all 58 NAB series (bursty counts: tweets, AWS; bench/README.md).
    anomaly_recur_k: int = 3  # 1..3 (3 peaks per side are kept)
    anomaly_recur_div: float = 4.0
    # ... and those peaks fade toward the envelope over this many samples (2.5x the value
    # envelope's memory: 14 h at a 10 s interval, 17 days at 5 min). Never forgetting
    # would mask a height forever once reached three times; 4,000-6,000 score alike.
    anomaly_recur_leak_n: float = 5000.0
    anomaly_short_n: float = 10.0  # short mean |diff| for variance change
    anomaly_k_range: float = 0.19  # excess beyond the envelope, in envelope widths, for u=1
    anomaly_k_spike: float = 1.25  # |diff| beyond the largest recent |diff|, relative, for u=1
    anomaly_k_collapse: float = 19.0  # long/short mean |diff| ratio for u=1
    anomaly_ctx_rare: float = 0.01  # novel context when new contexts come at this rate: u=1
    anomaly_ctx_tau_n: float = 200.0  # memory of the novel-context rate (samples)
    anomaly_ctx_burst: float = 2.0  # novel contexts among the last short_n for full weight
    anomaly_level_n: float = 64.0  # two-pole smoothing of the level component (samples)
    anomaly_level_warmup: float = 4.0  # level component silent for this many x level_n
    anomaly_level_floor: float = 0.1  # level envelope at least 10 % of the value envelope
    anomaly_level_absorb: float = 1.0  # a level flagged this far is taken in at once
    anomaly_power: float = 2.0  # score = u^p / (1 + u^p): u = 1 (rare) maps to 0.5
    anomaly_suppress_n: int = 100  # after a detection, scale the score down for N samples
    anomaly_suppress_factor: float = 0.3
    anomaly_rearm: float = 4.0  # ... unless a new event reaches this multiple of its u
    anomaly_period_tol: float = 0.1  # an alarm at the last alarms' interval +-10 %: damped
    anomaly_on: float = 0.8  # finding opens at this score ...
    anomaly_off: float = 0.5  # ... and clears after off_n readings below this
    anomaly_off_n: int = 6
    anomaly_yellow: float = 0.95  # peak score for yellow; below: blue (informational)
    # --- sensor health -----------------------------------------------------------------
    stale_factor: float = 3.0  # stale after 3 missed intervals
    flatline_window_s: float = 1800.0  # stuck for 30 min
    flatline_eps_rel: float = 1e-9  # "exactly" stuck, up to float noise
    flatline_min_scale: float = 0.0  # learnt mean |diff| must exceed this (the sensor varied)
    late_tolerance_s: float = 300.0  # late readings older than this are ignored entirely

    def __post_init__(self) -> None:
        # the kernel indexes the kept peaks with it: out of range would read another field
        if self.anomaly_recur_k not in (1, 2, 3):
            raise ValueError(f"anomaly_recur_k must be 1, 2 or 3, got {self.anomaly_recur_k}")
        if not self.anomaly_recur_div >= 1.0 or not self.anomaly_recur_leak_n >= 1.0:
            raise ValueError("anomaly_recur_div and anomaly_recur_leak_n must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LEVEL_NAMES = ("blue", "yellow", "orange", "red")
