"""The layout the README draws, held: chalicelib's packages depend downward only (no import
cycle between them, lazy imports included); nothing in chalicelib imports the tooling in siyu/;
a failed DynamoDB condition is interpreted in the store layer only; nothing else writes."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA = ROOT / "chalicelib"


def _unit(module: str) -> str:
    """A package of chalicelib, or a top-level module of it: chalicelib.duties, chalicelib.web."""
    return ".".join(module.split(".")[:2])


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "chalicelib":
                found |= {f"chalicelib.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def _modules() -> dict[str, Path]:
    modules = {}
    for path in LAMBDA.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        unit = todo.pop()
        if unit not in seen:
            seen.add(unit)
            todo += edges.get(unit, ())
    return seen


def _on_cycles(edges: dict[str, set[str]]) -> list[str]:
    """The units that can reach themselves: those on an import cycle."""
    return sorted(unit for unit in edges if unit in _reachable(edges, unit))


def test_chalicelib_packages_form_no_import_cycle():
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in _modules().items():
        for target in _imports(path):
            if target.startswith("chalicelib.") and _unit(target) != _unit(name):
                edges[_unit(name)].add(_unit(target))
    assert _on_cycles(edges) == []


def test_the_cycle_check_finds_a_cycle():
    assert _on_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c"]


def test_nothing_that_ships_imports_the_tooling_or_a_test_library():
    for name, path in _modules().items():
        shipped = {t.split(".")[0] for t in _imports(path)}
        assert not shipped & {"siyu", "tests", "moto", "pytest"}, name


def test_condition_failures_are_interpreted_only_in_the_store_layer():
    pattern = re.compile(r"except.*Condition|is_condition_failure|ConditionalCheckFailed")
    outside = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in [*LAMBDA.rglob("*.py"), ROOT / "app.py"]
        if path.parent != LAMBDA / "store"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert outside == []


def test_only_the_store_layer_writes_to_dynamodb():
    writes = re.compile(
        r"(?<!\bdb)\.save\(|\.update\(actions|\.delete\(\)|batch_write|TransactWrite\(|put_item|update_item"
    )
    outside = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in LAMBDA.rglob("*.py")
        if path.parent != LAMBDA / "store"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if writes.search(line)
    ]
    assert outside == []
