"""The package's layering, read from its import graph: no import circles, no upward imports, small modules.

The layer order is written down once, in ``pyproject.toml`` (``[tool.recaptcha_tf.architecture] layers``), lowest
first. Every ``import`` statement counts, at module or function level; a workflow named by a ``"module:function"``
string in a task spec (imported on first use) does not. Deprecated aliases (old module paths that hand over to their
new home) sit outside the layers: nothing in the package may import them.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recaptcha_tf"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["recaptcha_tf"]["architecture"]


def module_files() -> dict[str, pathlib.Path]:
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


MODULES = module_files()


def is_alias(path: pathlib.Path) -> bool:
    """A deprecated alias: a module that only warns and hands its name over to the module that replaced it."""
    text = path.read_text()
    return "sys.modules[__name__] = importlib.import_module(" in text or path.name in CONFIG["legacy"]


def imported_modules(name: str, path: pathlib.Path) -> set[str]:
    """The package modules that ``name`` imports anywhere in its source (relative imports resolved)."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != name:
                found.add(target)
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}
ALIASES = {name for name, path in MODULES.items() if is_alias(path)}


def layer_of(name: str) -> int | None:
    """Index of ``name``'s layer in the configured order; ``None`` for the top (the package root, ``__main__``)."""
    for index, layer in enumerate(CONFIG["layers"]):
        if name == layer or name.startswith(layer + "."):
            return index
    return None


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (each is an import circle)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_graph_is_read():
    # the reader must see the edges it judges: a few known ones, at module and at function level
    assert "recaptcha_tf.data.images" in GRAPH["recaptcha_tf.data.folders"]
    assert "recaptcha_tf.inference.runtimes" in GRAPH["recaptcha_tf.inference.predictor"]  # inside a method
    assert "recaptcha_tf.tasks.registry" in GRAPH["recaptcha_tf.tasks.text"]
    assert "recaptcha_tf.app" in ALIASES and "recaptcha_tf.layers" not in ALIASES


def test_no_import_circles():
    graph = {name: targets - ALIASES for name, targets in GRAPH.items() if name not in ALIASES}
    assert strongly_connected(graph) == []


def test_circle_detector_finds_a_circle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_upward_imports():
    upward = []
    for name, targets in GRAPH.items():
        if name in ALIASES:
            continue
        here = layer_of(name)
        for target in targets:
            there = layer_of(target)
            if target in ALIASES:
                upward.append(f"{name} -> {target} (a deprecated alias)")
            elif here is not None and (there is None or there > here):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_every_module_has_a_layer():
    unplaced = [n for n in MODULES if n not in ALIASES and layer_of(n) is None and n not in CONFIG["top"]]
    assert unplaced == []


def test_the_root_keeps_at_most_four_modules():
    root = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py") and not is_alias(p)]
    assert len(root) <= 4, root


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_600_lines(name):
    assert len(MODULES[name].read_text().splitlines()) <= 600
