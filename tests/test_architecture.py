"""The shape of the code base, checked from its source with the standard library's ``ast``.

Four rules from docs/architecture.md, each a test that names what breaks it:

- no import cycle between files, counting function-local imports, ``if TYPE_CHECKING:``
  imports and, in a file that calls ``importlib.import_module``, every string naming one of
  our modules (a command table feeding it): a lazy import hides a cycle, it does not remove it;
- no module over 400 lines;
- Ray calls (``.remote(``, ``ray.remote``, ``.options(``) only in ``actors/`` (the actors and
  their facades) and ``experiments/runtime/``; tests and benchmarks go through the facades,
  except two probes of Ray itself (``RAY_CALLS_ALLOWED``);
- the layers: ``protocols`` imports nothing of ours, ``orchestrators`` never import ray,
  ``actors`` or ``experiments``, ``datasets`` never import ``actors``, ``orchestrators`` or
  ``experiments``.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocols", "actors", "orchestrators", "experiments", "datasets", "benchmarks", "tests")
MAX_LINES = 400

# Files that may call Ray's remote API directly. The facades in actors/ own creation, calls
# and shutdown of each actor kind; the runtime starts Ray and places actors. Two test helpers
# are Ray probes by purpose: the round trip of messages across the raw actor boundary the
# facades rely on, and per-replica counters read on a multi-node cluster.
RAY_CALLS_ALLOWED = (
    "actors/",
    "experiments/runtime/",
    "tests/experiments/cluster_probe.py",
    "tests/actors/test_ray_roundtrip.py",
)
RAY_CALL = re.compile(r"\.remote\(|\bray\.remote\b|\.options\(")


def _source_files() -> list[Path]:
    files: list[Path] = []
    for package in PACKAGES:
        files.extend(p for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts)
    return sorted(files)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _source_files()}


def _resolve(name: str) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    modules = _modules()
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported_names(path: Path, tree: ast.Module) -> set[str]:
    """Every dotted name this file imports, anywhere in it, plus strings naming our modules."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            # `from a.b import c` runs a.b.c if c is a module, else a.b (the parents run anyway).
            names.update(f"{base}.{alias.name}" for alias in node.names)
    if _calls_import_module(tree):
        # A file that imports by name (a command table feeding importlib) imports every module
        # it names. A `python -m` subprocess is not an import and is not counted.
        names.update(
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _modules()
        )
    return names


def _calls_import_module(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            or (isinstance(node.func, ast.Name) and node.func.id == "import_module")
        )
        for node in ast.walk(tree)
    )


@cache
def _graph() -> dict[str, set[str]]:
    """File-level import graph over our modules (a module -> the modules it makes Python run)."""
    graph: dict[str, set[str]] = {}
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for imported in _imported_names(path, tree):
            target = _resolve(imported)
            if target is None or target == name:
                continue
            targets.add(target)
            # Importing a.b.c also runs a/__init__ and a/b/__init__, unless this file is
            # inside them (then they are already running).
            parts = target.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in _modules() and not (name == parent or name.startswith(parent + ".")):
                    targets.add(parent)
        graph[name] = targets
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = black
        return None

    for start in sorted(graph):
        if colour[start] == white and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_between_files() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    # The checker itself must be able to fail.
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_counts_function_local_and_string_imports(tmp_path: Path) -> None:
    source = (
        "import importlib\n"
        "def f():\n    from experiments.runtime import errors\n"
        "    return importlib.import_module('experiments.runtime.report')\n"
    )
    path = ROOT / "experiments" / "runtime" / "probe_only.py"
    names = _imported_names(path, ast.parse(source))
    assert {"experiments.runtime.errors", "experiments.runtime.report"} <= names


def test_no_module_over_400_lines() -> None:
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in _source_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def _code_without_strings(path: Path) -> list[tuple[int, str]]:
    """Source lines with docstrings and comments blanked, so prose naming `.remote(` is not a hit."""
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for i in range(node.lineno - 1, node.end_lineno or node.lineno):
                lines[i] = ""
    return [(i + 1, line.split("#", 1)[0]) for i, line in enumerate(lines)]


def test_ray_remote_calls_only_in_facades_and_runtime() -> None:
    hits: list[str] = []
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(RAY_CALLS_ALLOWED) or rel == "tests/test_architecture.py":
            continue
        hits.extend(f"{rel}:{n}: {line.strip()}" for n, line in _code_without_strings(path) if RAY_CALL.search(line))
    assert not hits, "Ray calls outside actors/ facades and experiments/runtime/:\n" + "\n".join(hits)


LAYERS = {
    # package: top-level names it must never import
    "protocols": {"actors", "orchestrators", "experiments", "datasets", "benchmarks", "tests", "ray"},
    "orchestrators": {"ray", "actors", "experiments", "benchmarks", "tests"},
    "datasets": {"ray", "actors", "orchestrators", "experiments", "benchmarks", "tests"},
    "actors": {"experiments", "benchmarks", "tests"},
    "experiments": {"benchmarks", "tests"},
}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_layers(package: str) -> None:
    forbidden = LAYERS[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in sorted(_imported_names(path, tree)):
            if name.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)
