"""docker-compose.yml and the Dockerfile: structure, pinned images, consistent wiring."""

from __future__ import annotations

import re
from typing import Any

from ._paths import COMPOSE, DOCKERFILE, PROMETHEUS, ROOT, load_yaml

EWARN_SERVICES = ("topics", "worker", "simulator")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _compose()["services"]
    return services


def _command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command", [])
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def test_services_present() -> None:
    assert {"kafka", "topics", "worker", "simulator", "prometheus", "grafana"} <= set(_services())


def test_images_are_pinned() -> None:
    for name, svc in _services().items():
        image = svc.get("image")
        assert image or svc.get("build"), name
        if image:
            assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
    assert _services()["kafka"]["image"] == "apache/kafka:4.1.1"
    from_lines = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert from_lines and all(":" in f and not f.endswith(":latest") for f in from_lines)


def test_kafka_is_single_node_kraft() -> None:
    env = _services()["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "CONTROLLER" in env["KAFKA_LISTENERS"]


def test_ewarn_services_use_the_image_and_cli() -> None:
    services = _services()
    assert _command(services["topics"])[:2] == ["topics", "create"]
    worker = _command(services["worker"])
    assert worker[0] == "worker"
    assert worker[worker.index("--bootstrap") + 1] == "kafka:9092"
    assert worker[worker.index("--web-port") + 1] == "6066"
    sim = _command(services["simulator"])
    assert sim[0] == "simulate" and "--to-kafka" in sim and "--realtime" in sim
    for name in EWARN_SERVICES:
        assert services[name].get("build") is not None, name


def test_bind_mounts_exist() -> None:
    for name, svc in _services().items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith((".", "/")):
                assert (ROOT / src).resolve().exists(), f"{name}: {src} missing"


def test_worker_registry_mount_contains_the_registry() -> None:
    worker = _services()["worker"]
    cmd = _command(worker)
    registry_path = cmd[cmd.index("--registry") + 1]
    for vol in worker["volumes"]:
        src, dst = vol.split(":")[:2]
        if registry_path.startswith(dst + "/"):
            assert (ROOT / src / registry_path[len(dst) + 1 :]).is_file()
            break
    else:
        raise AssertionError(f"{registry_path} is not inside a mounted volume")


def test_dockerfile_runs_the_ewarn_console_script() -> None:
    text = DOCKERFILE.read_text()
    entry = re.findall(r"^(?:ENTRYPOINT|CMD)\s+(.+)$", text, re.M)
    assert any('"ewarn"' in e or e.strip().startswith("ewarn") for e in entry)
    assert re.search(r"^RUN .*pip install \.", text, re.M)
    for copied in re.findall(r"^COPY\s+(.+?)\s+\S+$", text, re.M):
        for src in copied.split():
            assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_prometheus_targets_match_compose() -> None:
    services = _services()
    prom = load_yaml(PROMETHEUS / "prometheus.yml")
    worker_env = services["worker"]["environment"]
    metrics_port = str(worker_env["EWARN_METRICS_PORT"])
    assert worker_env["EWARN_METRICS_HOST"] == "0.0.0.0"
    targets = [
        t
        for job in prom["scrape_configs"]
        if job["job_name"] == "ewarn-worker"
        for sc in job["static_configs"]
        for t in sc["targets"]
    ]
    assert targets
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert host in services, target
        assert port == metrics_port, target
    ports = {str(p).split(":")[-1] for p in services["worker"].get("ports", [])}
    assert metrics_port in ports
    mounts = services["prometheus"]["volumes"]
    assert any(v.startswith("./ops/prometheus:/etc/prometheus") for v in mounts)


def test_grafana_mounts_provisioning_and_dashboards() -> None:
    mounts = [v.split(":")[:2] for v in _services()["grafana"]["volumes"]]
    assert ["./ops/grafana/provisioning", "/etc/grafana/provisioning"] in mounts
    assert ["./ops/grafana/dashboards", "/var/lib/grafana/dashboards"] in mounts


def test_depends_on_conditions_and_healthchecks() -> None:
    services = _services()
    allowed = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, spec in deps.items():
            assert dep in services
            assert spec["condition"] in allowed
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
    for name in ("kafka", "worker", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (
        services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    )


def test_our_env_vars_are_prefixed() -> None:
    anchors = _compose().get("x-ewarn-env", {})
    for key in anchors:
        assert key.startswith("EWARN_"), key
    for name in EWARN_SERVICES:
        for key in _services()[name].get("environment", {}):
            assert key.startswith("EWARN_"), f"{name}: {key}"
    # ${VAR} interpolations in the compose file are ours too
    for var in re.findall(r"\$\{(\w+)", COMPOSE.read_text()):
        assert var.startswith("EWARN_"), var
