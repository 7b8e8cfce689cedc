"""The package's import graph, read from the source (every import, function-level
ones included): no cycle between modules, no private name imported from another
module, and the layers point one way (reports never import the orchestration)."""

from __future__ import annotations

import ast
from pathlib import Path

from healthops import config

ROOT = Path(config.REPO_ROOT) / "plugins"
ORCHESTRATION = ("healthops.pipeline", "healthops.orchestration", "healthops.cli", "healthops.alerts")
# layer -> what it must never import
FORBIDDEN = {
    "healthops.reports": ORCHESTRATION,
    "healthops.quality": ORCHESTRATION + ("healthops.reports",),
    "healthops.load": ORCHESTRATION + ("healthops.reports", "healthops.quality"),
    "healthops.sources": ORCHESTRATION + ("healthops.reports", "healthops.quality", "healthops.load"),
    "healthops.warehouse": ORCHESTRATION + ("healthops.reports", "healthops.quality", "healthops.load"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
                if not module.startswith("healthops"):
                    continue
                for alias in node.names:
                    target = f"{module}.{alias.name}" if f"{module}.{alias.name}" in mods else module
                    edges[name].add(target)
                    if target == module and alias.name.startswith("_") and module != name:
                        private.append(f"{name} imports {module}.{alias.name}")
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name.startswith("healthops"))
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    mods = _modules()
    edges, _ = _imports(mods)
    assert len(mods) > 40
    assert "healthops.quality.rules" in edges["healthops.quality.gx_runner"]
    assert "healthops.reports.render" in edges["healthops.reports.daily_census"]


def test_no_import_cycles():
    edges, _ = _imports(_modules())
    assert _cycles(edges) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check works


def test_no_private_name_is_imported_from_another_module():
    _, private = _imports(_modules())
    assert private == []


def test_layers_point_one_way():
    edges, _ = _imports(_modules())
    wrong = [
        f"{m} imports {t}"
        for m, targets in sorted(edges.items())
        for t in sorted(targets)
        for layer, banned in FORBIDDEN.items()
        if (m == layer or m.startswith(layer + ".")) and any(t == b or t.startswith(b + ".") for b in banned)
    ]
    assert wrong == []
