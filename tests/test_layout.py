"""The tests' own layout: test modules never import each other; what they share is in
``support`` (the VM tests' helpers stay beside them in ``vm``)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (first name only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_no_test_module_imports_another() -> None:
    modules = sorted(TESTS.rglob("*.py"))
    test_modules = {p.stem for p in modules if p.stem.startswith("test_")}
    offenders = [
        f"{path.relative_to(TESTS)} imports {name}"
        for path in modules
        for name in sorted(_imported(path) & (test_modules | {"conftest"}))
    ]
    assert offenders == []


def test_only_tests_at_the_top() -> None:
    """Helpers belong in support/, where test discovery and the layout check expect them."""
    loose = [
        p.name
        for p in TESTS.glob("*.py")
        if not p.name.startswith("test_") and p.name != "conftest.py"
    ]
    assert loose == []


def test_the_check_sees_imports_anywhere(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text("import os\ndef f():\n    from test_y import z\n    import support.world\n")
    assert _imported(module) == {"os", "test_y", "support"}
