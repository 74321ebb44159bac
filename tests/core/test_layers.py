"""The product's imports (parsed, not run): no import circle, and no import from a lower floor to a higher one
(docs/architecture.md, issue 23).

Circles: module-level imports only. An import inside a function runs when the function is called, after
every module is loaded, and one under ``if TYPE_CHECKING:`` never runs, so neither can take part in a
circle at import time; both are left out of the circle check. Importing ``a.b.c`` runs ``a`` and ``a.b``
first, so it counts as an import of those packages too (a module's own packages excepted).

Floors: every import counts (module level, inside functions, under TYPE_CHECKING): a lower floor does not
know a higher one at all. A module may import its own floor and the floors below; every module of the
product has a floor (a new top-level module or package is placed here)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("actors", "supervision")
ENTRY = "entry points"  # ``__main__`` modules and the ``python -m actors.<tool>`` aliases: the top floor
# lowest first; a name covers the module or package and everything under it
FLOORS: tuple[tuple[str, ...], ...] = (
    ("supervision",),  # generic: nothing of actors/
    ("actors.core",),  # the pure core: only itself and supervision below it
    ("actors", "actors.conventions", "actors.inputs", "actors.clock"),  # conventions, bounded reads, the clock
    ("actors.net", "actors.sim"),  # the network seam and the embedded exchange (which imports no config)
    ("actors.config",),  # parsed config: its sections include the simulator's settings
    ("actors.records",),  # what a session is and leaves
    (  # the actors and what wires them
        "actors.feed",
        "actors.feed_snapshot",
        "actors.aggregator",
        "actors.executor",
        "actors.collector",
        "actors.chaos",
        "actors.liveview",
        "actors.interrupts",
        "actors.wiring",
        "actors.wiring_market",
    ),
    ("actors.session",),  # one session: the tree of actors
    ("actors.cli", "actors.logs", "actors.tools", "actors.sweep", ENTRY),  # commands and their log sinks
)
ALIASES = ("actors.report", "actors.calibrate", "actors.decode", "actors.tail")  # python -m actors.<name>


def _modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _import_nodes(body: list[ast.stmt], *, everything: bool):
    """The import statements of ``body``; without ``everything``, only those that run when the module is
    imported (not in a function, not under TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if everything:
                yield from _import_nodes(node.body, everything=True)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            if everything:
                yield from _import_nodes(node.body, everything=True)
            yield from _import_nodes(node.orelse, everything=everything)
        else:  # class bodies, if/try/with/for/while blocks and their handlers run at import time
            blocks = [getattr(node, field, None) for field in ("body", "orelse", "finalbody")]
            blocks += [handler.body for handler in getattr(node, "handlers", ())]
            for block in blocks:
                if isinstance(block, list):
                    yield from _import_nodes(block, everything=everything)


def _imports(name: str, path: Path, modules: dict[str, Path], *, everything: bool) -> set[str]:
    """The modules of the product that ``name`` imports (the nearest module for a name inside one)."""

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text()).body, everything=everything):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return {m for m in map(resolve, found) if m is not None and m != name}


def _graph(modules: dict[str, Path], *, everything: bool) -> dict[str, set[str]]:
    return {name: _imports(name, path, modules, everything=everything) for name, path in modules.items()}


def _with_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    out = {}
    for name, deps in graph.items():
        more = set(deps)
        for dep in deps:
            parent = dep.rpartition(".")[0]
            while parent:
                if parent in graph and parent != name and not name.startswith(parent + "."):
                    more.add(parent)
                parent = parent.rpartition(".")[0]
        out[name] = more
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def floor_of(name: str) -> int | None:
    if name.endswith(".__main__") or name in ALIASES:
        name = ENTRY
    best = None  # the longest name that covers it
    for level, names in enumerate(FLOORS):
        for covered in names:
            if name == covered or name.startswith(covered + "."):
                if best is None or len(covered) > len(best[1]):
                    best = (level, covered)
    return None if best is None else best[0]


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{name} (floor {floor_of(name)}) imports {dep} (floor {floor_of(dep)})"
        for name, deps in sorted(graph.items())
        for dep in sorted(deps)
        if floor_of(dep) > floor_of(name)
    ]


MODULES = _modules()


def test_the_product_has_no_import_circle():
    assert len(MODULES) > 100
    assert circles(_with_packages(_graph(MODULES, everything=False))) == []


def test_every_module_has_a_floor():
    assert [name for name in MODULES if floor_of(name) is None] == []


def test_no_import_from_a_lower_floor_to_a_higher_one():
    assert upward(_graph(MODULES, everything=True)) == []


def test_the_core_imports_only_the_core_and_supervision():
    graph = _graph(MODULES, everything=True)
    outside = {f"{name} -> {dep}" for name, deps in graph.items() if name.startswith("actors.core") for dep in deps}
    assert {d for d in outside if not d.split(" -> ")[1].startswith(("actors.core", "supervision"))} == set()


# -- the checks themselves --------------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return _modules(tmp_path)


def test_the_circle_check_sees_a_circle_and_leaves_out_deferred_imports(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "actors/__init__.py": "",
            "actors/a.py": "from actors.b import x\n",
            "actors/b.py": "import actors.c\n",
            "actors/c.py": "from actors import a\n",
            "actors/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from actors.e import y\n",
            "actors/e.py": "def f():\n    from actors.d import z\n",
            "supervision/__init__.py": "",
        },
    )
    assert circles(_with_packages(_graph(modules, everything=False))) == [["actors.a", "actors.b", "actors.c"]]
    assert circles(_graph(modules, everything=True)) == [
        ["actors.a", "actors.b", "actors.c"],
        ["actors.d", "actors.e"],
    ]


def test_a_package_that_imports_its_module_closes_a_circle(tmp_path):
    modules = _tree(
        tmp_path,
        {
            "actors/__init__.py": "",
            "actors/p/__init__.py": "from actors.p.m import x\n",
            "actors/p/m.py": "",
            "actors/q.py": "from actors.p.m import x\n",
            "actors/p/n.py": "from actors.q import y\n",
            "supervision/__init__.py": "",
        },
    )
    # q imports p.m, which runs p/__init__ first; p/__init__ imports p.m, which is fine; nothing imports p.n
    assert circles(_with_packages(_graph(modules, everything=False))) == []
    modules["actors.p"].write_text("from actors.p.m import x\nfrom actors.p.n import z\n")
    assert circles(_with_packages(_graph(modules, everything=False))) == [["actors.p", "actors.p.n", "actors.q"]]


@pytest.mark.parametrize(
    "name, dep, wrong",
    [
        ("actors.core.trader", "actors.records.kpi", True),
        ("actors.core.trader", "actors.config", True),
        ("actors.sim.model", "actors.config.sections", True),
        ("supervision.policy", "actors.core.vocabulary", True),
        ("actors.session.run", "actors.cli", True),
        ("actors.records.kpi", "actors.feed", True),
        ("actors.session.__main__", "actors.cli", False),
        ("actors.cli", "actors.session", False),
        ("actors.core.trader", "supervision.words", False),
        ("actors.sim.replay", "actors.net.ws", False),
    ],
)
def test_the_floor_check_sees_an_upward_import(name, dep, wrong):
    assert bool(upward({name: {dep}})) is wrong
