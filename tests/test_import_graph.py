"""The import graph of `lottery_core`, `pipelines` and `tune`, read from the source: no cycles, and
the layers point one way (tune → pipelines → lottery_core).

Every `import` statement counts as an edge, at module level or inside a function (and inside
`if TYPE_CHECKING:`): a function-level import that closes a loop is the same knot deferred to run
time, and the two cycles this test was written against (`pipelines/config/*`, runner ↔
iterative) were visible only that way. A `from package import name` is an edge to the submodule
`package.name` where there is one, else to the package. Dynamic imports (`importlib`, the lazy
registries) are not seen; implicit imports of a parent package are not edges.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lottery_core", "pipelines", "tune")
LAYER = {"lottery_core": 0, "pipelines": 1, "tune": 2}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported(name: str | None, known) -> str | None:
    """The project module `name` refers to: itself, else its nearest enclosing package (None: outside)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def edges(module: str, path: Path, known) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {imported(a.name, known) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            out |= {imported(f"{base}.{a.name}", known) or imported(base, known) for a in node.names}
    return out - {None, module}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: edges(m, p, known) for m, p in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], 0
    for root in g:
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, successors = work[-1]
            w = next(successors, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(g[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read():
    g = graph()
    assert "pipelines.config.schema" in g["pipelines.config.loading"]
    assert "pipelines.run_lifecycle" in g["pipelines.experiments.iterative"]
    assert "pipelines.runner" in g["tune.trial"]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("lower", ["lottery_core", "pipelines"])
def test_layers_point_one_way(lower):
    against = sorted(f"{m} -> {t}" for m, targets in graph().items() if m.split(".")[0] == lower
                     for t in targets if LAYER[t.split(".")[0]] > LAYER[lower])
    assert against == []
