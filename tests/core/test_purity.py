"""The core stays pure: no runtime, no I/O, no logging (parsed from the source, not imported)."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "actors" / "core"
FORBIDDEN_MODULES = {"trio", "trio_websocket", "loguru", "socket", "asyncio", "httpx", "h11", "os", "io",
                     "pathlib", "logging", "subprocess", "time", "actors.ws", "actors.sim"}
FORBIDDEN_CALLS = {"open", "print", "input"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
                found.append(f"{path.name}:{node.lineno} imports {name}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append(f"{path.name}:{node.lineno} calls {node.func.id}()")
    return found


def test_core_imports_no_runtime_io_or_logging():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 8
    problems = [v for f in files for v in _violations(f)]
    assert problems == []


def test_the_check_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import trio\nfrom loguru import logger\nopen('x')\n")
    assert len(_violations(bad)) == 3
