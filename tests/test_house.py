"""The house: the import graph of src/encoderzoo, read from the code itself (imports at the top,
inside functions and under TYPE_CHECKING alike, and the package __init__ an import runs first),
has no circle, never imports from a lower layer up to a higher one, has no stage importing
another, imports no encoderzoo module inside a function, and no file is over 300 lines."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

SRC = ROOT / "src" / "encoderzoo"
MAX_LINES = 300

# Each layer may import from its own and the ones before it, never from one after it.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"errors", "console", "fileio", "cache", "registry", "options", "environment", "assets",
                     "version", "precision", "workspace"}),
    ("domain: data, tasks, formats and the algorithms on them", {
        "features", "families", "recipes", "model_config", "tokenizer_check", "roofline", "ceiling",
        "first_token", "scoring", "devices", "sentence_embedding", "tasks", "graphs", "export", "optimize",
        "quantize", "quantize_token", "triage", "triton", "ascend", "interop", "report", "report_md",
        "report_roofline", "report_triage", "report_export", "sources", "listings", "verdict"}),
    ("the model: one source", {"checkpoints", "random_weights", "model_source", "model_safety", "convert"}),
    ("artifacts: kinds, builders, the store", {"artifacts", "builders", "kinds", "store"}),
    ("runtime: backends and the one session", {"backends", "infer", "session", "bench", "ray_engine",
                                               "rebatch"}),
    ("the run: options and what every stage reads", {"config", "config_file", "context", "inference",
                                                       "evaluation"}),
    ("stages", {"stages"}),
    ("front: the pipeline, the API and the command line", {
        "pipeline", "api", "server", "serve_ray", "cli_serve", "cli_options", "cli", "__main__", ""}),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    found = [i for i, (_, names) in enumerate(LAYERS) if top in names]
    assert found, f"encoderzoo.{module} belongs to no layer: add it to LAYERS"
    return found[0]


def imports() -> list[tuple[str, str, bool, int]]:
    """(importer, imported, inside a function, line) for every import of an encoderzoo module."""
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                     for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "encoderzoo":
                targets = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t.removeprefix("encoderzoo.") in MODULES else node.module for t in targets]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "encoderzoo"]
            else:
                continue
            for target in targets:
                module = target.removeprefix("encoderzoo").removeprefix(".")
                while module not in MODULES:
                    module = module.rpartition(".")[0]
                chain = [module]
                parent = module.rpartition(".")[0]
                while parent:  # importing a.b.c runs a.b's __init__ first (unless it is the importer's)
                    if not name.startswith(parent + ".") and parent != name:
                        chain.append(parent)
                    parent = parent.rpartition(".")[0]
                found += [(name, m, id(node) in functions, node.lineno) for m in chain if m != name]
    return found


def test_no_circle_in_the_import_graph() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, imported, _, _ in imports():
        graph[importer].add(imported)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, f"import circle: {' -> '.join([*path, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [])


def test_no_import_from_a_lower_layer_up() -> None:
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]}) at line {line}"
              for a, b, _, line in imports() if layer_of(b) > layer_of(a)]
    assert upward == []


def test_no_stage_imports_another() -> None:
    across = [(a, b) for a, b, _, _ in imports() if a.startswith("stages.") and b.startswith("stages.")]
    assert across == []


def test_no_encoderzoo_module_is_imported_inside_a_function() -> None:
    """Heavy runtimes (torch, onnxruntime, openvino, nncf, ray) are imported where they are used;
    encoderzoo's own modules never need to be: none imports a runtime when it is imported."""
    lazy = [f"{a}:{line} imports {b}" for a, b, inside, line in imports() if inside]
    assert lazy == []


def test_no_file_is_over_300_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_importing_the_package_imports_no_heavy_runtime() -> None:
    import subprocess
    import sys

    heavy = "('torch', 'onnxruntime', 'openvino', 'nncf', 'ray')"
    code = f"import sys, encoderzoo.cli, encoderzoo.pipeline; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
