"""Replay files: recorded envelopes and plain telemetry lines."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

from pipeline.kafka_io import envelope_of, replay_items


def test_plain_lines_are_sent_byte_for_byte_keyed_by_sensor() -> None:
    good = b'{"site_id":"S","sensor_id":"S/T-1","metric":"t","value":1,"ts":"2026-11-28T08:00:00Z"}'
    bad = b'{"sensor_id": "S/T-1", "value": NaN'
    items = list(replay_items([good + b"\n", b"\n", bad + b"\r\n", b"\xff\xfe\n"]))
    assert [i.value for i in items] == [good, bad, b"\xff\xfe"]
    assert [i.key for i in items] == [b"S/T-1", None, None]
    assert items[0].timestamp_ms == 1795852800000  # 2026-11-28T08:00:00Z
    assert not items[0].keep_timestamp


def test_recorded_envelope_round_trips() -> None:
    msg = SimpleNamespace(topic="ew.telemetry", partition=2, offset=7, timestamp=123,
                          key=b"k", value=b"\x00\xffbinary", headers=[("h", b"v")])
    env = envelope_of(msg)
    assert env["value_encoding"] == "base64"
    line = json.dumps(env).encode()
    (item,) = list(replay_items([line]))
    assert (item.key, item.value, item.timestamp_ms, item.partition) == (
        b"k", b"\x00\xffbinary", 123, 2)
    assert item.headers == [("h", b"v")]
    assert item.keep_timestamp
    assert env["headers"] == [["h", base64.b64encode(b"v").decode()]]
