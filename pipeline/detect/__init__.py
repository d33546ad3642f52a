"""The detection core: thresholds, forecasts, rate, anomaly score, sensor health.

Framework-free (standard library + numpy). Per-record: ``new_state`` / ``step`` /
``check_stale``; many sensors at once: ``BatchDetector``; univariate scoring:
``AnomalyScorer`` / ``score_series`` (``ewarn score``).
"""

from pipeline.detect.anomaly import AnomalyScorer, score_series
from pipeline.detect.batch import BatchDetector
from pipeline.detect.core import SensorState, check_stale, new_state, sensor_config, step
from pipeline.detect.params import DetectorParams

__all__ = [
    "AnomalyScorer",
    "BatchDetector",
    "DetectorParams",
    "SensorState",
    "check_stale",
    "new_state",
    "score_series",
    "sensor_config",
    "step",
]
