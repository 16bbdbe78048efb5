"""No function of the package is over 60 lines (issue 13: functions that fit on a screen).

A function's length runs from its ``def`` line to its last line, docstring included, decorators not.
Methods and nested functions count on their own (a nested function also counts in its outer one).
A function may be longer only when its docstring says why, with the words "longer than 60 lines because".
The source is read with ``ast``: nothing is imported.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import aws_lambda_artifact_builder

DIR_PACKAGE = Path(aws_lambda_artifact_builder.__file__).parent
MAX_LINES = 60
REASON = "longer than 60 lines because"


def long_functions(source: str, *, filename: str = "<source>") -> list[str]:
    """``file:line name (N lines)`` of every function over ``MAX_LINES`` whose docstring gives no reason."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        assert node.end_lineno is not None
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_LINES and REASON not in (ast.get_docstring(node) or ""):
            found.append(f"{filename}:{node.lineno} {node.name} ({lines} lines)")
    return found


def _function(lines: int, docstring: str = "Short.", *, prefix: str = "def") -> str:
    """A function of exactly ``lines`` lines: the ``def``, the docstring line and ``pass`` lines."""
    body = ["    pass"] * (lines - 2)
    return "\n".join([f"{prefix} f():", f'    """{docstring}"""', *body]) + "\n"


def test_the_check_counts_from_def_to_the_last_line():
    assert long_functions(_function(60)) == []
    assert long_functions(_function(61)) == ["<source>:1 f (61 lines)"]
    assert long_functions(_function(61, prefix="async def")) == ["<source>:1 f (61 lines)"]


def test_the_check_sees_methods_and_nested_functions():
    method = "class C:\n" + textwrap.indent(_function(61), "    ")
    assert long_functions(method) == ["<source>:2 f (61 lines)"]
    nested = "def outer():\n" + textwrap.indent(_function(61), "    ")
    assert long_functions(nested) == ["<source>:1 outer (62 lines)", "<source>:2 f (61 lines)"]


def test_a_reason_in_the_docstring_allows_a_long_function():
    assert long_functions(_function(61, "It is longer than 60 lines because it is a table.")) == []
    assert long_functions(_function(61, "It is long because it is a table.")) != []


def test_no_function_of_the_package_is_over_60_lines_without_a_reason():
    files = sorted(DIR_PACKAGE.rglob("*.py"))
    assert len(files) > 20, "the package's sources were not found"
    found = []
    for path in files:
        found += long_functions(path.read_text(encoding="utf-8"), filename=str(path.relative_to(DIR_PACKAGE)))
    assert found == [], "split these functions or say in the docstring why they are longer:\n" + "\n".join(found)
