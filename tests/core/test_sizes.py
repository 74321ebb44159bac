"""The pure core reads in one sitting: no module over 500 lines, no function over 60 (STYLE.md, issue 23).

Lines as the file has them (docstrings and comments count); a function from its ``def`` (decorators
included) to its last line."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "actors" / "core"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
MODULES = sorted(CORE.rglob("*.py"))


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            yield node.name, node.lineno, node.end_lineno - first + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_core_module_over_500_lines_and_no_function_over_60(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: {len(text.splitlines())} lines"
    long = [f"{name} (line {at}): {n} lines" for name, at, n in _functions(ast.parse(text)) if n > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: " + "; ".join(long)


def test_the_size_check_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    ((name, _, lines),) = _functions(ast.parse(f"@staticmethod\ndef f():\n{body}\n"))
    assert (name, lines) == ("f", 63)
