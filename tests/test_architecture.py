"""The house's shape: engage's imports run one way, down the layers, with no circle.

`LAYERS` is the one declaration of the layer order (docs/architecture.md draws it). The test reads every
module of engage/ with `ast` (imports inside functions and under `if TYPE_CHECKING` included, and the
lazy names of the public API) and fails on an import of a higher layer or on a circle of modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    # the error types, atomic writes, bounded reading of user
    # files, model signing, the engine contract, time zones
    ("engage.errors", "engage.files", "engage.bounded", "engage.signing", "engage.engine", "engage.zones"),
    ("engage.config",),  # the typed settings
    ("engage.data",),  # loading posts into the canonical table
    ("engage.embed",),  # photos and captions into vectors
    ("engage.features",),  # the feature table (and the local engine that computes it)
    ("engage.model",),  # estimators, targets, the saved bundle, explanations
    ("engage.scoring",),  # the Scorer serving a bundle: batching, vector cache, tables, pyfunc
    # the Ray implementations of the engine and of table scoring; the outcome store, accuracy, imports, drift
    ("engage.distributed", "engage.outcomes"),
    ("engage.engines", "engage.batch", "engage.serving"),  # choosing an engine; the batch CLI; the HTTP API
    # a whole run: load, embed, fit, evaluate, log, register (its stages printed and timed, its MLflow store
    # prepared); promoting one; the simulated month of the outcome loop
    ("engage.training", "engage.promote", "engage.stages", "engage.tracking", "engage.simulated_month",
     "engage.summary"),
    ("engage",),  # the public API (engage/__init__.py)
)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """The engage modules `path` imports anywhere in its body (top level, functions, TYPE_CHECKING blocks),
    and the lazy targets of a `_LAZY = {name: (module, attribute)}` table."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(module: str, names: list[str]) -> None:
        for item in names:  # `from engage.model import training` imports the module engage.model.training
            if f"{module}.{item}" in modules:
                found.add(f"{module}.{item}")
            elif module in modules:
                found.add(module)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "engage")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "engage":
                add(module, [alias.name for alias in node.names])
        elif (isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets)
              and isinstance(node.value, ast.Dict)):
            for value in node.value.values:
                if isinstance(value, ast.Tuple) and isinstance(value.elts[0], ast.Constant):
                    found.add(str(value.elts[0].value))
    return {m for m in found if m != name}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for p in sorted((root / "engage").rglob("*.py"))}
    modules = set(paths)
    return {name: imported_modules(path, modules, root) for name, path in paths.items()}


def layer_of(module: str) -> int:
    """The index of the layer holding `module` (the longest declared prefix wins; `engage` is only its
    own __init__.py)."""
    best, where = "", None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            inside = module == prefix or (prefix != "engage" and module.startswith(prefix + "."))
            if inside and len(prefix) > len(best):
                best, where = prefix, index
    if where is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")
    return where


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b} (layer {layer_of(a)} imports layer {layer_of(b)})"
                  for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one
    module, and modules importing themselves (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_in_a_declared_layer():
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_a_higher_layer():
    assert upward_edges(import_graph()) == []


def test_there_is_no_import_circle():
    assert cycles(import_graph()) == []


# --- the checks themselves, on a constructed package --------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(tmp_path)


def test_an_import_inside_a_function_is_an_edge_and_a_climb_is_reported(tmp_path):
    graph = _package(tmp_path, {
        "engage/__init__.py": "",
        "engage/data/__init__.py": "def f():\n    from engage.model.bundle import X\n",
        "engage/model/__init__.py": "",
        "engage/model/bundle.py": "from engage.data import thing\n",
    })
    assert graph["engage.data"] == {"engage.model.bundle"}
    assert upward_edges(graph) == ["engage.data -> engage.model.bundle (layer 2 imports layer 5)"]
    assert cycles(graph) == [["engage.data", "engage.model.bundle"]]


def test_a_type_checking_import_and_a_lazy_name_are_edges(tmp_path):
    graph = _package(tmp_path, {
        "engage/__init__.py": "_LAZY = {'Scorer': ('engage.scoring.scorer', 'Scorer')}\n",
        "engage/scoring/__init__.py": "",
        "engage/scoring/scorer.py": "from typing import TYPE_CHECKING\nif "
        "TYPE_CHECKING:\n    from engage import training\n",
        "engage/training.py": "",
    })
    assert graph["engage"] == {"engage.scoring.scorer"}
    assert graph["engage.scoring.scorer"] == {"engage.training"}
    assert upward_edges(graph) == ["engage.scoring.scorer -> engage.training (layer 6 imports layer 9)"]


def test_a_module_outside_every_layer_is_refused():
    with pytest.raises(AssertionError, match="engage.attic is in no layer"):
        layer_of("engage.attic")


def test_the_architecture_document_draws_the_declared_layers():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("```layers\n", 1)[1].split("```", 1)[0]
    drawn: dict[int, tuple[str, ...]] = {}
    for line in block.splitlines():
        number, *words = line.split()
        modules = []
        for word in words:  # the layer's modules, then its description
            if word != "engage" and not word.startswith("engage."):
                break
            modules.append(word)
        drawn[int(number)] = tuple(modules)
    assert drawn == dict(enumerate(LAYERS))
