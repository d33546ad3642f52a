"""The Metrics facade: each verb moves the intended series, labels stay bounded."""

from __future__ import annotations

import re
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.metrics import (
    DEAD_LETTER_REASONS,
    Metrics,
    exported_metric_names,
    promql_metric_names,
    render,
    start_http_server,
)
from pipeline.model import AlertEvent, Responsible


def _event(**kw: object) -> AlertEvent:
    base: dict[str, object] = dict(
        alert_id="HB-WH-0001/CH4-01:threshold:1",
        event="opened",
        kind="threshold",
        level="orange",
        site_id="HB-WH-0001",
        sensor_id="HB-WH-0001/CH4-01",
        metric="ch4",
        value=1.02,
        threshold=1.0,
        score=None,
        started_at=0,
        ts=0,
        message="m",
        responsible=Responsible("E", "R", ("Hubei", "Wuhan", "Jiangxia")),
    )
    base.update(kw)
    return AlertEvent(**base)  # type: ignore[arg-type]


def val(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_own_registry_per_instance() -> None:
    a, b = Metrics(), Metrics()
    a.reading("coal_mine", "Hubei", "accepted")
    assert (
        val(a, "ewarn_readings_total", industry="coal_mine", province="Hubei", outcome="accepted")
        == 1
    )
    assert (
        val(b, "ewarn_readings_total", industry="coal_mine", province="Hubei", outcome="accepted")
        is None
    )


def test_reading_counts_by_outcome_and_unknown_industry() -> None:
    m = Metrics()
    for _ in range(3):
        m.reading("coal_mine", "Hubei", "accepted")
    m.reading("coal_mine", "Hubei", "rejected")
    m.reading("spaceport", "Hubei", "rejected")  # not an industry of the contract
    assert (
        val(m, "ewarn_readings_total", industry="coal_mine", province="Hubei", outcome="accepted")
        == 3
    )
    assert (
        val(m, "ewarn_readings_total", industry="coal_mine", province="Hubei", outcome="rejected")
        == 1
    )
    assert (
        val(m, "ewarn_readings_total", industry="unknown", province="Hubei", outcome="rejected")
        == 1
    )


def test_per_site_is_opt_in() -> None:
    plain, per_site = Metrics(), Metrics(per_site=True)
    plain.reading("construction", "Hubei", "accepted", site_id="HB-WH-0003")
    per_site.reading("construction", "Hubei", "accepted", site_id="HB-WH-0003")
    assert "site=" not in render(plain).decode()
    assert (
        val(
            per_site,
            "ewarn_readings_total",
            industry="construction",
            province="Hubei",
            outcome="accepted",
            site="HB-WH-0003",
        )
        == 1
    )


def test_dead_letter_reasons_are_a_closed_set() -> None:
    m = Metrics()
    for reason in DEAD_LETTER_REASONS:
        m.dead_letter(reason)
    for i in range(50):
        m.dead_letter(f"weird-{i}")
    for reason in DEAD_LETTER_REASONS:
        assert val(m, "ewarn_dead_letters_total", reason=reason) == 1
    assert val(m, "ewarn_dead_letters_total", reason="other") == 50


def test_alert_event_and_escalation() -> None:
    m = Metrics()
    m.alert_event(_event(), "coal_mine", "Hubei")
    m.alert_event(_event(event="escalated", tier=2), "coal_mine", "Hubei")
    m.alert_event(_event(kind="stale", level=None), "coal_mine", "Hubei")
    assert (
        val(
            m,
            "ewarn_alert_events_total",
            kind="threshold",
            level="orange",
            event="opened",
            industry="coal_mine",
            province="Hubei",
        )
        == 1
    )
    assert (
        val(
            m,
            "ewarn_alert_events_total",
            kind="threshold",
            level="orange",
            event="escalated",
            industry="coal_mine",
            province="Hubei",
        )
        == 1
    )
    assert (
        val(
            m,
            "ewarn_alert_events_total",
            kind="stale",
            level="none",
            event="opened",
            industry="coal_mine",
            province="Hubei",
        )
        == 1
    )
    m.escalation(2, "unacknowledged")
    m.escalation(2, "unacknowledged")
    m.escalation(7, "unacknowledged")
    assert val(m, "ewarn_escalations_total", tier="2", reason="unacknowledged") == 2
    assert val(m, "ewarn_escalations_total", tier="other", reason="unacknowledged") == 1


def test_snapshot_gauges_zero_vanished_label_sets() -> None:
    m = Metrics()
    m.set_open_alerts({("red", "Hubei"): 2, ("orange", "Hubei"): 5})
    assert val(m, "ewarn_open_alerts", level="red", province="Hubei") == 2
    m.set_open_alerts({("orange", "Hubei"): 1})
    assert val(m, "ewarn_open_alerts", level="red", province="Hubei") == 0
    assert val(m, "ewarn_open_alerts", level="orange", province="Hubei") == 1
    m.set_hidden_dangers({("red", "Hubei"): 4})
    assert val(m, "ewarn_hidden_dangers", level="red", province="Hubei") == 4
    m.set_site_risk({("major", "Hubei"): 3, ("low", "Hubei"): 40})
    assert val(m, "ewarn_site_risk_sites", grade="low", province="Hubei") == 40
    m.set_stale_sensors({"Hubei": 7})
    m.set_stale_sensors({})
    assert val(m, "ewarn_stale_sensors", province="Hubei") == 0


def test_consumer_lag_snapshot_removes_revoked_partitions() -> None:
    m = Metrics()
    m.set_consumer_lag({("ew.telemetry", 0): 10, ("ew.telemetry", 1): 20})
    assert val(m, "ewarn_consumer_lag", topic="ew.telemetry", partition="1") == 20
    m.set_consumer_lag({("ew.telemetry", 0): 5})
    assert val(m, "ewarn_consumer_lag", topic="ew.telemetry", partition="0") == 5
    assert val(m, "ewarn_consumer_lag", topic="ew.telemetry", partition="1") is None


def test_last_reading_only_moves_forward() -> None:
    m = Metrics()
    m.last_reading("Hubei", 1_764_316_800_000)
    m.last_reading("Hubei", 1_764_316_700_000)  # a late / replayed reading
    assert val(m, "ewarn_last_reading_timestamp_seconds", province="Hubei") == 1_764_316_800.0
    m.last_reading("Hubei", 1_764_316_801_500)
    assert val(m, "ewarn_last_reading_timestamp_seconds", province="Hubei") == 1_764_316_801.5


def test_histograms_info_and_registry_size() -> None:
    m = Metrics()
    m.observe_detection_latency(0.2)
    m.observe_detection_latency(45.0)
    m.observe_detection_latency(-1.0)  # clock skew: clamp, never raise
    assert val(m, "ewarn_detection_latency_seconds_count") == 3
    assert val(m, "ewarn_detection_latency_seconds_bucket", le="0.25") == 2
    assert val(m, "ewarn_detection_latency_seconds_bucket", le="30.0") == 2
    assert val(m, "ewarn_detection_latency_seconds_bucket", le="60.0") == 3
    with m.time_batch("detect"):
        pass
    assert val(m, "ewarn_batch_processing_seconds_count", stage="detect") == 1
    m.set_worker_info("0.1.0", "w-1")
    assert val(m, "ewarn_worker_info", version="0.1.0", worker_id="w-1") == 1
    m.set_registry_size(50, 261)
    assert val(m, "ewarn_registry_sites") == 50
    assert val(m, "ewarn_registry_sensors") == 261


def test_kafka_unreachable_counts_failed_metadata_requests() -> None:
    m = Metrics()
    assert val(m, "ewarn_kafka_unreachable_total") == 0
    m.kafka_unreachable()
    m.kafka_unreachable()
    assert val(m, "ewarn_kafka_unreachable_total") == 2


def test_free_text_labels_are_capped() -> None:
    m = Metrics(max_label_values=5)
    for i in range(100):
        m.reading("coal_mine", f"P{i}", "accepted")
        m.observe_batch(f"stage-{i}", 0.001)
    provinces = {
        s.labels["province"]
        for fam in m.registry.collect()
        if fam.name == "ewarn_readings"
        for s in fam.samples
        if s.name == "ewarn_readings_total"
    }
    assert len(provinces) == 6 and "other" in provinces
    assert (
        val(m, "ewarn_readings_total", industry="coal_mine", province="other", outcome="accepted")
        == 95
    )


def test_exposition_parses_and_names_are_prefixed() -> None:
    m = Metrics()
    m.reading("coal_mine", "Hubei", "accepted")
    m.dead_letter("too_large")
    m.alert_event(_event(), "coal_mine", "Hubei")
    m.observe_detection_latency(1.0)
    families = list(text_string_to_metric_families(render(m).decode()))
    assert families
    assert all(f.name.startswith("ewarn_") for f in families)
    sample_names = {s.name for f in families for s in f.samples}
    assert sample_names <= exported_metric_names(m)
    assert {"ewarn_readings_total", "ewarn_detection_latency_seconds_bucket"} <= sample_names


def test_http_server_serves_on_loopback() -> None:
    m = Metrics()
    m.reading("construction", "Hubei", "accepted")
    server, thread = start_http_server(m, port=0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert re.search(r'^ewarn_readings_total\{.*outcome="accepted".*\} 1\.0$', body, re.M)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (level) (rate(ewarn_alert_events_total{event="opened"}[5m]))',
            {"ewarn_alert_events_total"},
        ),
        ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        (
            'time() - max by (province) (ewarn_last_reading_timestamp_seconds{province=~"$p"})'
            " > 300",
            {"ewarn_last_reading_timestamp_seconds"},
        ),
        ("a / ignoring(reason) group_left b > bool 1e-3 unless on(x) c offset 5m", {"a", "b", "c"}),
        ('up{job="by (x) and y"} == 0 or vector(0)', {"up"}),
        ("ewarn:dead_letter_ratio:rate5m > 0.05", {"ewarn:dead_letter_ratio:rate5m"}),
    ],
)
def test_promql_metric_names(expr: str, expected: set[str]) -> None:
    assert promql_metric_names(expr) == expected
