"""The pure code stays pure: no runtime, no I/O, no logging, no clock, no unseeded randomness (parsed from the
source, not imported).

Pure: everything under ``actors/core/``, the simulator's market model and the restart policy.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "actors" / "core"
MODEL = ROOT / "actors" / "sim" / "model.py"
MARKET_MODEL = ROOT / "actors" / "sim" / "market_model.py"  # the fitted processes the model steps
POLICY = ROOT / "supervision" / "policy.py"
SETTINGS = ROOT / "actors" / "sim" / "settings.py"  # what the model reads: pure too
DRAWS = ROOT / "actors" / "sim" / "draws.py"  # the model's draws, written out: pure too
FORBIDDEN_MODULES = {
    "trio",
    "trio_websocket",
    "loguru",
    "socket",
    "asyncio",
    "httpx",
    "h11",
    "os",
    "io",
    "pathlib",
    "logging",
    "subprocess",
    "time",
    "actors.net",
    "actors.sim",
}
FORBIDDEN_CALLS = {"open", "print", "input"}
TIME_CLOCKS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}
DATE_CLOCKS = ("datetime.now", "datetime.utcnow", "datetime.today", "date.today")  # also as datetime.datetime.now
SEEDED = "Random"  # the one name of the random module a pure file may use: random.Random(seed)
PROJECT = ("actors", "supervision")
PURE_MODULES = (
    "actors.core",
    "actors.sim.model",
    "actors.sim.market_model",
    "actors.sim.settings",
    "actors.sim.draws",
    "supervision.policy",
)


def _where(path: Path, node: ast.AST) -> str:
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return f"{name}:{node.lineno}"


def _within(name: str, modules) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it stands for (``from datetime import datetime as dt``: ``dt`` -> ``datetime.datetime``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    names[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """``time.monotonic`` for the expression ``t.monotonic`` after ``import time as t``; None for other shapes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(names.get(node.id, node.id))
    return ".".join(reversed(parts))


def _is_clock(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    return (module == "time" and attr in TIME_CLOCKS) or any(name == c or name.endswith("." + c) for c in DATE_CLOCKS)


def _violations(path: Path) -> list[str]:
    """Every breach in ``path``, in line order."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = _imported_names(tree)
    found: list[tuple[int, str]] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append((node.lineno, f"{_where(path, node)} {what}"))

    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
            for alias in node.names:
                if node.module == "time" and alias.name in TIME_CLOCKS:
                    flag(node, f"imports the clock time.{alias.name}")
                if node.module == "random" and alias.name != SEEDED:
                    flag(node, f"imports the module-level random.{alias.name}")
        for name in modules:
            if _within(name, FORBIDDEN_MODULES) and not _within(name, PURE_MODULES):
                flag(node, f"imports {name}")
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                flag(node, f"calls {node.func.id}()")
            called = _dotted(node.func, names)
            if called is not None and _is_clock(called):
                flag(node, f"reads the clock {called}()")
            if called == f"random.{SEEDED}" and not node.args and not node.keywords:
                flag(node, f"creates an unseeded random.{SEEDED}()")
        if isinstance(node, ast.Attribute):
            used = _dotted(node, names)
            if used is not None and used.startswith("random.") and used.split(".")[1] != SEEDED:
                flag(node, f"uses the module-level {used}")
    return [message for _, message in sorted(found, key=lambda item: item[0])]


def _impure_project_imports(path: Path) -> list[str]:
    """Imports of this project's modules that are not pure themselves (their imports are not checked here)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for name in modules:
            if _within(name, PROJECT) and not _within(name, PURE_MODULES):
                found.append(f"{_where(path, node)} imports {name}, which is not pure")
    return found


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_imports_no_runtime_io_or_logging():
    files = _core_files()
    assert len(files) >= 8
    problems = [v for f in files for v in _violations(f)]
    assert problems == []


@pytest.mark.parametrize("path", [MODEL, MARKET_MODEL, DRAWS, POLICY], ids=lambda p: p.name)
def test_the_market_model_and_the_restart_policy_use_no_runtime_io_logging_or_clock(path):
    assert _violations(path) == []


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(_core_files(), id="core"),
        pytest.param([POLICY], id="policy"),
        pytest.param([MODEL, MARKET_MODEL, SETTINGS, DRAWS], id="model"),
    ],
)
def test_pure_files_import_only_pure_modules_of_the_project(paths):
    assert paths
    problems = [v for f in paths for v in _impure_project_imports(f)]
    assert problems == []


def test_the_check_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import trio\nfrom loguru import logger\nopen('x')\n")
    assert len(_violations(bad)) == 3


def test_the_check_catches_every_clock_read(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import datetime as dt\n"
        "from datetime import date, datetime\n"
        "import time\n"
        "from time import monotonic, perf_counter as pc\n"
        "datetime.now()\n"
        "datetime.utcnow()\n"
        "date.today()\n"
        "dt.datetime.now(dt.timezone.utc)\n"
        "time.time()\n"
        "time.monotonic()\n"
        "time.perf_counter()\n"
        "monotonic()\n"
        "pc()\n"
        "datetime.fromtimestamp(0)\n"
    )  # a given time, not the clock
    assert _violations(bad) == [
        "bad.py:3 imports time",
        "bad.py:4 imports the clock time.monotonic",
        "bad.py:4 imports the clock time.perf_counter",
        "bad.py:4 imports time",
        "bad.py:5 reads the clock datetime.datetime.now()",
        "bad.py:6 reads the clock datetime.datetime.utcnow()",
        "bad.py:7 reads the clock datetime.date.today()",
        "bad.py:8 reads the clock datetime.datetime.now()",
        "bad.py:9 reads the clock time.time()",
        "bad.py:10 reads the clock time.monotonic()",
        "bad.py:11 reads the clock time.perf_counter()",
        "bad.py:12 reads the clock time.monotonic()",
        "bad.py:13 reads the clock time.perf_counter()",
    ]


def test_the_check_catches_module_level_random_and_allows_seeded_instances(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import random\n"
        "from random import Random, shuffle\n"
        "rng = random.Random(7)\n"
        "rng.random()\n"
        "Random(8).choice([1, 2])\n"
        "def draw(r: random.Random) -> float:\n"
        "    return r.gauss(0, 1)\n"
        "random.random()\n"
        "random.choice([1, 2])\n"
        "random.seed(3)\n"
        "pick = random.sample\n"
        "random.Random()\n"
    )
    assert _violations(bad) == [
        "bad.py:2 imports the module-level random.shuffle",
        "bad.py:8 uses the module-level random.random",
        "bad.py:9 uses the module-level random.choice",
        "bad.py:10 uses the module-level random.seed",
        "bad.py:11 uses the module-level random.sample",
        "bad.py:12 creates an unseeded random.Random()",
    ]


def test_the_check_catches_an_impure_project_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from actors.config import SimConfig\n"
        "from actors.core.book import Level\n"
        "import actors.core.venues.binance\n"
        "from supervision.policy import RestartPolicy\n"
        "from supervision import RestartTracker\n"  # the package also imports the Trio supervisor
        "from attrs import frozen\n"
    )
    assert _impure_project_imports(bad) == [
        "bad.py:1 imports actors.config, which is not pure",
        "bad.py:5 imports supervision, which is not pure",
    ]
