"""The core stays framework-free and the dependency points one way: edges -> core."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EDGES = {"cli", "broker.py", "kafka_io.py", "metrics.py"}
# Third-party modules the core may use (parsing/validation helpers and numpy).
CORE_ALLOWED = {"numpy", "orjson", "yaml", "jsonschema", "schemas"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def core_files() -> list[Path]:
    out = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        rel = path.relative_to(REPO / "pipeline")
        if rel.parts[0] not in EDGES:
            out.append(path)
    return out


def test_core_imports_only_stdlib_numpy_and_itself() -> None:
    assert len(core_files()) >= 5
    stdlib = set(sys.stdlib_module_names)
    offenders = {}
    for path in core_files():
        bad = imported_roots(path) - stdlib - CORE_ALLOWED - {"pipeline", "__future__"}
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_core_never_imports_the_edges_or_agents() -> None:
    offenders = []
    for path in core_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
                if mod.startswith("agents") or any(
                    mod == f"pipeline.{e.removesuffix('.py')}" or mod.startswith(
                        f"pipeline.{e.removesuffix('.py')}.")
                    for e in EDGES
                ):
                    offenders.append((str(path.relative_to(REPO)), mod))
    assert offenders == []
