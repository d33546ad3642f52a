"""`ewarn record` / `ewarn replay` round trip on the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

pytestmark = pytest.mark.integration


def ewarn(*args: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args, "--bootstrap", bootstrap],
                          capture_output=True, text=True, timeout=120, check=False)


def test_record_then_replay_keeps_key_value_headers_partition_and_time(
    bootstrap: str, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    src = make_topic("rec-src", partitions=3)
    dst = make_topic("rec-dst", partitions=3)
    prod = KafkaProducer(bootstrap_servers=bootstrap)
    base = int(time.time() * 1000) - 60_000
    for i in range(30):
        prod.send(src, key=f"k{i % 5}".encode(), value=b"\xff\x00bin" if i == 7 else
                  json.dumps({"i": i}).encode(), headers=[("h", str(i).encode())],
                  partition=i % 3, timestamp_ms=base + i * 1000)
    prod.flush()
    prod.close()
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    done = ewarn("record", "--topic", src, "--out", str(first), bootstrap=bootstrap)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in first.read_text().splitlines()]
    assert len(rows) == 30
    assert sum(1 for r in rows if r.get("value_encoding") == "base64") == 1
    done = ewarn("replay", str(first), "--topic", dst, "--keep-partition", bootstrap=bootstrap)
    assert done.returncode == 0, done.stderr
    assert ewarn("record", "--topic", dst, "--out", str(second),
                 bootstrap=bootstrap).returncode == 0
    again = [json.loads(x) for x in second.read_text().splitlines()]

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in ("topic", "offset")}

    def key(r: dict[str, Any]) -> tuple[int, int]:
        return (r["partition"], r["offset"])

    assert [strip(r) for r in sorted(again, key=key)] == [strip(r) for r in sorted(rows, key=key)]


def test_replay_time_range_and_pacing(bootstrap: str, make_topic: Callable[..., str],
                                      tmp_path: Path) -> None:
    dst = make_topic("paced")
    lines = [json.dumps({"site_id": "S", "sensor_id": "S/X-1", "metric": "x", "value": i,
                         "ts": 1_795_852_800_000 + i * 1000}) for i in range(10)]
    path = tmp_path / "plain.jsonl"
    path.write_text("\n".join(lines) + "\n")
    began = time.monotonic()
    done = ewarn("replay", str(path), "--topic", dst, "--speed", "4",
                 "--start", "2026-11-28T08:00:02Z", "--end", str(1_795_852_800_000 + 8000),
                 bootstrap=bootstrap)
    elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out.jsonl"
    assert ewarn("record", "--topic", dst, "--out", str(out), bootstrap=bootstrap).returncode == 0
    values = [json.loads(json.loads(x)["value"])["value"] for x in out.read_text().splitlines()]
    assert values == [2, 3, 4, 5, 6, 7]  # [start, end) in event time
    assert all(json.loads(x)["key"] == "S/X-1" for x in out.read_text().splitlines())
    # 5 s of event time at x4 is at least 1.25 s of wall time.
    assert elapsed >= 1.25
    missing = ewarn("replay", str(tmp_path / "nope.jsonl"), "--topic", dst, bootstrap=bootstrap)
    assert missing.returncode != 0 and "nope.jsonl" in missing.stderr
