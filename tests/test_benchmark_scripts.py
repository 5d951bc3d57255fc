"""Every benchmarks/bench_*.py takes ``--json PATH``, as benchmarks/run_all.py calls it.

run_all.py runs each script with ``--json FILE`` and reads the figures back from
FILE; a script whose ``--json`` is a flag (or missing) fails there. Checked on the
scripts' source, without running the benchmarks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))


def _json_option(tree: ast.AST) -> ast.Call | None:
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument" and node.args
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "--json"):
            return node
    return None


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 7


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_json_option_takes_a_path(script: Path) -> None:
    call = _json_option(ast.parse(script.read_text()))
    assert call is not None, f"{script.name}: no --json option"
    keywords = {k.arg: k.value for k in call.keywords}
    assert "action" not in keywords, f"{script.name}: --json is a flag, run_all.py passes a path"
    kind = keywords.get("type")
    assert isinstance(kind, ast.Name), f"{script.name}: --json should be type=Path"
    assert kind.id == "Path", f"{script.name}: --json should be type=Path"
    source = script.read_text()
    assert "args.json.write_text(" in source, f"{script.name}: the figures are not written to --json"
