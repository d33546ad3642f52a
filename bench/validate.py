"""Throughput of the ingest validator alone, against plain JSON parsing of the same bytes.

    .venv/bin/python bench/validate.py [--records 100000] [--repeat 3]

Prints records/s (best of ``--repeat`` runs) for:
  json.loads                     the baseline the brief asks to compare with
  orjson.loads                   the parser the validator uses
  orjson + duplicate-key check   the validator's fast duplicate test (colon count)
  json + object_pairs_hook       the naive duplicate test it avoids
  Validator.validate             everything: parse, duplicates, types, time, registry
and the ratio of the validator to ``json.loads`` measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from pipeline.model import Reading, SourcePosition
from pipeline.registry import load_registry
from pipeline.timeutil import to_rfc3339
from pipeline.validation import Validator, _colons_reserialised

REGISTRY = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "registry.yaml"
NOW_MS = 1_795_852_800_000


def make_records(n: int) -> list[bytes]:
    """Realistic valid telemetry: every sensor of the fixture, half RFC 3339, half epoch ms."""
    rng = random.Random(1)
    sensors = list(load_registry(REGISTRY).sensors.values())
    out = []
    for i in range(n):
        s = sensors[i % len(sensors)]
        ts = NOW_MS - (n - i) * 100
        rec = {
            "site_id": s.site_id,
            "sensor_id": s.sensor_id,
            "metric": s.metric,
            "value": round(rng.uniform(0, 10), 3),
            "unit": s.unit,
            "ts": to_rfc3339(ts) if i % 2 else ts,
            "quality": "good",
        }
        out.append(json.dumps(rec).encode())
    return out


def rate(fn: Callable[[bytes], object], records: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for raw in records:
            fn(raw)
        best = min(best, time.perf_counter() - start)
    return len(records) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    records = make_records(args.records)
    validator = Validator(load_registry(REGISTRY))
    src = SourcePosition("bench", 0, 0)
    assert all(
        isinstance(validator.validate(r, None, src, NOW_MS), Reading) for r in records[:1000]
    )

    def orjson_dups(raw: bytes) -> bool:
        obj = orjson.loads(raw)
        return b"\\u" not in raw and _colons_reserialised(obj) == raw.count(b":")

    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError("duplicate")
        return out

    def validate(raw: bytes) -> object:
        return validator.validate(raw, None, src, NOW_MS)

    cases: list[tuple[str, Callable[[bytes], object]]] = [
        ("json.loads", json.loads),
        ("orjson.loads", orjson.loads),
        ("orjson + duplicate-key check", orjson_dups),
        ("json + object_pairs_hook", lambda raw: json.loads(raw, object_pairs_hook=hook)),
        ("Validator.validate", validate),
    ]
    size = sum(map(len, records)) / len(records)
    print(f"{len(records)} valid records, {size:.0f} bytes each on average, best of {args.repeat}")
    rates = {}
    for name, fn in cases:
        rates[name] = rate(fn, records, args.repeat)
        print(f"  {name:<30} {rates[name]:>12,.0f} records/s")
    base = rates["json.loads"]
    print(f"validator / json.loads throughput ratio: {rates['Validator.validate'] / base:.2f}")
    dup_cost = 1 / rates["orjson + duplicate-key check"] - 1 / rates["orjson.loads"]
    print(
        f"duplicate-key check costs {dup_cost * 1e6:.2f} µs/record "
        f"(naive hook parse: {(1 / rates['json + object_pairs_hook']) * 1e6:.2f} µs/record)"
    )


if __name__ == "__main__":
    main()
