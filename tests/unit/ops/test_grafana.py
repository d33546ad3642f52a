"""Grafana provisioning and dashboards: valid, wired to the provisioned data source,
and every PromQL expression uses series that ewarn (or a recording rule) exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.metrics import Metrics, exported_metric_names, promql_metric_names

from ._paths import GRAFANA, load_yaml, rule_groups

DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _datasource_uid() -> str:
    ds = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    prom = [d for d in ds if d["type"] == "prometheus"]
    assert len(prom) == 1
    return str(prom[0]["uid"])


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows
    return out


def test_there_are_dashboards() -> None:
    names = {p.name for p in DASHBOARDS}
    assert "ewarn-overview.json" in names


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    prov = load_yaml(GRAFANA / "provisioning" / "dashboards" / "ewarn.yml")["providers"]
    assert prov[0]["type"] == "file"
    assert prov[0]["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dash = json.loads(path.read_text(encoding="utf-8"))
    uid = _datasource_uid()
    assert dash["uid"] and dash["title"]
    assert 36 <= dash["schemaVersion"] <= 41
    panels = [p for p in _panels(dash) if p["type"] != "row"]
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in panels:
        assert p["targets"], f"panel {p['title']!r} has no targets"
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24
        assert p["datasource"]["uid"] == uid, p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t.get("datasource", p["datasource"])["uid"] == uid
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            assert var["datasource"]["uid"] == uid


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return not (
        a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
        or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
    )  # fmt: skip


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_do_not_overlap(path: Path) -> None:
    grids = [p["gridPos"] for p in json.loads(path.read_text(encoding="utf-8"))["panels"]]
    for i, a in enumerate(grids):
        for b in grids[i + 1 :]:
            assert not _overlaps(a, b), (a, b)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_use_only_exported_metrics(path: Path) -> None:
    exported = exported_metric_names(Metrics()) | {"up"}
    recorded = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    dash = json.loads(path.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for p in _panels(dash):
        for t in p.get("targets", []):
            names = promql_metric_names(t["expr"])
            assert names, f"{p['title']}: no metric in {t['expr']!r}"
            unknown = names - exported - recorded
            assert not unknown, f"{p['title']}: {unknown}"
            seen |= names
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("definition") or ""
        for metric in re.findall(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,", query):
            assert metric in exported
    assert any(n.startswith("ewarn_") for n in seen)


def test_overview_covers_the_required_views() -> None:
    text = " ".join(
        t["expr"]
        for path in DASHBOARDS
        for p in _panels(json.loads(path.read_text(encoding="utf-8")))
        for t in p.get("targets", [])
    )
    for needle in (
        "ewarn_alert_events_total", "ewarn_hidden_dangers", "ewarn_site_risk_sites",
        "ewarn_readings_total", "histogram_quantile(0.99", "histogram_quantile(0.5",
        "ewarn_consumer_lag", "ewarn_dead_letters_total", "ewarn_escalations_total",
        "ewarn_stale_sensors",
    ):  # fmt: skip
        assert needle in text, needle


def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """promtool parses every panel expression (Grafana variables substituted)."""
    import shutil
    import subprocess

    import yaml

    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool not found on PATH (apt-get install -y prometheus)", pytrace=False)
    rules: list[dict[str, str]] = []
    for path in DASHBOARDS:
        for p in _panels(json.loads(path.read_text(encoding="utf-8"))):
            for t in p.get("targets", []):
                expr = t["expr"].replace("$__rate_interval", "5m").replace("$province", ".*")
                assert "$" not in expr, expr
                rules.append({"record": f"dash:panel:{len(rules)}", "expr": expr})
    rule_file = tmp_path / "dash.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dash", "rules": rules}]}))
    proc = subprocess.run(
        [exe, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
