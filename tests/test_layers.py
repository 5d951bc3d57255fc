"""The package's layers import in one direction only, and no module imports itself in a cycle.

Layers, lowest first: a module may import modules of its own layer or of lower ones.
The test reads every module's ``import`` statements (also the ones inside functions),
so a late import cannot hide an upward dependency; imports for type checkers only
(``if TYPE_CHECKING:``) do not count, since they never run.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import ewpolar.models
import ewpolar.processors
import ewpolar.selections
import pytest

#: module prefix -> layer; the longest matching prefix decides
LAYERS: dict[str, int] = {
    "ewpolar": 0,
    "ewpolar.core": 0,
    "ewpolar.inputs": 1,
    "ewpolar.observables": 1,
    "ewpolar.generator": 1,
    "ewpolar.selections": 2,
    "ewpolar.models.features": 3,
    "ewpolar.models.runtime": 3,
    "ewpolar.processors": 4,
    "ewpolar.runner": 5,
    "ewpolar.stats": 6,
    "ewpolar.plots": 7,
    "ewpolar.report": 7,
    "ewpolar.models": 7,
    "ewpolar.pipeline": 8,
    "ewpolar.cli": 9,
    "ewpolar.clitools": 9,
    "ewpolar.models.cli": 9,
    "ewpolar.models.train_ssww": 9,
}

_ROOTS = {
    "ewpolar": Path(ewpolar.__file__).parent,
    "ewpolar.models": Path(ewpolar.models.__file__).parent,
    "ewpolar.processors": Path(ewpolar.processors.__file__).parent,
    "ewpolar.selections": Path(ewpolar.selections.__file__).parent,
}


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(module)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root_name, root in _ROOTS.items():
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([root_name, *parts])
            # the framework's root folder holds no processors/selections/models folders
            if name.split(".")[:2] in (["ewpolar", p] for p in ("processors", "selections", "models")) \
                    and root_name == "ewpolar":
                continue
            found[name] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    out: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from ewpolar import observables` imports the module ewpolar.observables
            submodules = {f"{target}.{a.name}" for a in node.names} & MODULES.keys()
            out.update(submodules)
            if len(submodules) < len(node.names):
                out.add(target)
    return {m for m in out if m == "ewpolar" or m.startswith("ewpolar.")}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 40
    for module in MODULES:
        layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_only(module: str) -> None:
    own = layer(module)
    upward = sorted(f"{m} (layer {layer(m)})" for m in GRAPH[module] if layer(m) > own)
    assert not upward, f"{module} (layer {own}) imports {', '.join(upward)}"


def test_no_import_cycles() -> None:
    graph = {m: {t for t in deps if t in GRAPH and t != m} for m, deps in GRAPH.items()}
    # a package's __init__ importing its own submodules is the package, not a cycle
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                cycle = [*stack[stack.index(t):], t]
                if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in itertools.pairwise(cycle)):
                    raise AssertionError("import cycle: " + " -> ".join(cycle))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
