"""A real single-node Apache Kafka 4.x broker (KRaft, combined broker+controller) on loopback.

Edge module: used by ``ewarn broker``, ``ewarn demo``, the integration-test fixture
and the benchmarks. The broker's jars come from Maven Central through
``scripts/kafka/pom.xml`` into ``.cache/kafka/libs`` (git-ignored) and are reused
when present. Each broker gets its own temp dir (config, KRaft storage, log,
pid file); ``stop`` ends exactly that process and removes the dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
POM = REPO_ROOT / "scripts" / "kafka" / "pom.xml"
LOG4J_CONFIG = REPO_ROOT / "scripts" / "kafka" / "log4j2.yaml"


def cache_dir() -> Path:
    """Where the broker jars live; ``EWARN_KAFKA_CACHE`` overrides (CI can share one)."""
    return Path(os.environ.get("EWARN_KAFKA_CACHE", REPO_ROOT / ".cache" / "kafka"))


def state_file() -> Path:
    """Where ``ewarn broker start`` records the running broker for ``stop``/``status``."""
    return cache_dir() / "broker.json"


class BrokerError(RuntimeError):
    """The broker could not be fetched, formatted or started."""


@dataclass(frozen=True)
class BrokerInfo:
    pid: int
    port: int
    controller_port: int
    data_dir: str
    started_in_s: float

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self.data_dir) / "server.log"


def libs_dir() -> Path:
    return cache_dir() / "libs"


def jars_present() -> bool:
    libs = libs_dir()
    return libs.is_dir() and any(libs.glob("kafka_2.13-*.jar"))


def fetch_jars(progress: Callable[[str], None] = lambda _m: None) -> Path:
    """Resolve the broker jars with Maven into the cache (no-op when already there)."""
    if jars_present():
        return libs_dir()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH; it is needed once to fetch the Kafka jars")
    progress(f"fetching Kafka jars from Maven Central into {libs_dir()} ...")
    tmp = libs_dir().with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"mvn failed ({result.returncode}):\n{result.stdout[-2000:]}")
    shutil.rmtree(libs_dir(), ignore_errors=True)
    tmp.rename(libs_dir())
    return libs_dir()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError("java is not on PATH (Java 17+ is needed to run the broker)")
    return java


def server_properties(port: int, controller_port: int, data_dir: Path) -> str:
    """The broker config: KRaft single node, no auto topic creation, RF 1 internals."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data_dir / 'kraft'}",
            "auto.create.topics.enable=false",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Sane retention for a local/dev broker: a day or 1 GiB per partition.
            "log.retention.hours=24",
            "log.retention.bytes=1073741824",
            "log.segment.bytes=104857600",
            "",
        ]
    )


def _classpath() -> str:
    return f"{libs_dir()}/*"


def _wait_ready(bootstrap: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Ready = the broker answers a metadata request and can coordinate a consumer group.

    Why the group: a fresh broker creates ``__consumer_offsets`` only when a client
    first looks for a group coordinator. Done here, the first worker does not join its
    group while that topic is still being created (it then starts without a
    coordinator, "GroupCoordinatorNotAvailable", and retries).
    """
    from kafka import KafkaAdminClient  # edge module: kafka-python is fine here

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"broker exited with code {proc.returncode} during start-up")
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=2000, client_id="ewarn-ready"
            )
            try:
                cluster = admin.describe_cluster()
                if cluster.get("brokers"):
                    admin.describe_groups(["ewarn-ready"])  # raises until coordinated
                    return
            finally:
                admin.close()
        except Exception as exc:  # any failure means "not ready yet"
            last = exc
        time.sleep(0.2)
    raise BrokerError(f"broker at {bootstrap} not ready after {timeout_s:.0f}s: {last}")


def start(
    port: int | None = None,
    timeout_s: float = 90.0,
    progress: Callable[[str], None] = lambda _m: None,
    heap: str = "768m",
) -> BrokerInfo:
    """Fetch jars if needed, format fresh storage and start a broker; return when ready."""
    fetch_jars(progress)
    t0 = time.monotonic()
    port = port or free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="ewarn-kafka-"))
    config = data_dir / "server.properties"
    config.write_text(server_properties(port, controller_port, data_dir))
    progress("formatting KRaft storage ...")
    cluster_id = uuid.uuid4().hex[:22]
    fmt = subprocess.run(
        [_java(), f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", _classpath(),
         "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise BrokerError(f"storage format failed: {fmt.stdout}{fmt.stderr}")
    progress(f"starting Kafka on 127.0.0.1:{port} ...")
    try:
        pid = _launch(data_dir, port, timeout_s, heap)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    info = BrokerInfo(
        pid=pid,
        port=port,
        controller_port=controller_port,
        data_dir=str(data_dir),
        started_in_s=round(time.monotonic() - t0, 2),
    )
    (data_dir / "broker.json").write_text(json.dumps(asdict(info)))
    return info


def restart(info: BrokerInfo, down_s: float = 0.0, timeout_s: float = 90.0,
            heap: str = "768m") -> BrokerInfo:
    """Stop this broker (SIGTERM, a clean shutdown), keep its data, start it again.

    Why: clients must ride out a broker restart (an upgrade, a host reboot); tests
    need one on the same port with the same topics and offsets.
    """
    _terminate(info.pid)
    time.sleep(down_s)
    t0 = time.monotonic()
    pid = _launch(Path(info.data_dir), info.port, timeout_s, heap)
    new = replace(info, pid=pid, started_in_s=round(time.monotonic() - t0, 2))
    (Path(info.data_dir) / "broker.json").write_text(json.dumps(asdict(new)))
    return new


def _launch(data_dir: Path, port: int, timeout_s: float, heap: str) -> int:
    """Start kafka.Kafka on a formatted ``data_dir``; its pid once it answers."""
    config = data_dir / "server.properties"
    log = (data_dir / "server.log").open("ab")
    # Ctrl-C must not land between the fork and the assignment of ``proc``: the
    # broker would run on with nobody to stop it. Signals wait until it is known.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    command = [
        _java(), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
        "-Xshare:auto", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", _classpath(),
        "kafka.Kafka", str(config),
    ]
    try:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the broker directly
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals),
        )
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
        raise
    finally:
        log.close()
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)  # a pending Ctrl-C fires here
        _wait_ready(f"127.0.0.1:{port}", proc, timeout_s)
    except BaseException:
        _terminate(proc.pid)
        raise
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _terminate(pid: int, grace_s: float = 20.0) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)


def stop(info: BrokerInfo) -> None:
    """End exactly this broker process (by PID) and remove its data dir."""
    _terminate(info.pid)
    shutil.rmtree(info.data_dir, ignore_errors=True)


def save_state(info: BrokerInfo) -> None:
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps(asdict(info)))


def load_state() -> BrokerInfo | None:
    try:
        data = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None
    return BrokerInfo(**data)


def is_running(info: BrokerInfo) -> bool:
    return _alive(info.pid)


def clear_state() -> None:
    state_file().unlink(missing_ok=True)
