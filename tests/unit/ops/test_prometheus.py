"""promtool accepts the config and rules, and the rule unit tests pass.

promtool is a hard requirement (Debian package ``prometheus``; CI installs it):
a missing binary fails these tests instead of silently skipping them.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pipeline.metrics import Metrics, exported_metric_names, promql_metric_names

from ._paths import PROMETHEUS, rule_groups


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool not found on PATH: install it (Debian: apt-get install -y prometheus)",
            pytrace=False,
        )
    return subprocess.run(
        [exe, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"promtool failed:\n{proc.stdout}\n{proc.stderr}"


def test_check_config() -> None:
    proc = _promtool("check", "config", "prometheus.yml")
    _ok(proc)
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_check_rules() -> None:
    files = sorted(p.name for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert files, "no rule files"
    _ok(_promtool("check", "rules", *(f"rules/{f}" for f in files)))


def test_rule_unit_tests() -> None:
    tests = sorted(p.name for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests"
    proc = _promtool("test", "rules", *(f"tests/{t}" for t in tests))
    _ok(proc)
    assert "FAILED" not in proc.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    from ._paths import load_yaml

    alerts = {r["alert"] for g in rule_groups() for r in g["rules"] if "alert" in r}
    required = {
        "EwarnWorkerDown", "EwarnConsumerLagGrowing", "EwarnDeadLetterRateHigh",
        "EwarnNoTelemetryFromRegion",
    }  # fmt: skip
    assert required <= alerts
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alerts <= fired, f"alerts never tested firing: {alerts - fired}"
    assert alerts <= quiet, f"alerts never tested quiet: {alerts - quiet}"


def test_alerts_carry_severity_and_annotations() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_use_only_exported_metrics() -> None:
    exported = exported_metric_names(Metrics()) | {"up"}
    recorded = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    for group in rule_groups():
        for rule in group["rules"]:
            unknown = promql_metric_names(rule["expr"]) - exported - recorded
            assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"
