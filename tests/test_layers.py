"""DESIGN.md's layering: Qt lives in ganstudio/ui only, so the core runs and tests without a display."""
import ast
import subprocess
import sys
from pathlib import Path

import ganstudio

PACKAGE = Path(ganstudio.__file__).parent
QT_MODULES = {"PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy", "superqt", "pytestqt"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_module_outside_ui_imports_qt():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "ui" not in path.relative_to(PACKAGE).parts[:1] and imported_roots(path) & QT_MODULES
    ]
    assert offenders == []


def test_the_checker_sees_a_qt_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from PySide6.QtCore import QObject\n")
    assert "PySide6" in imported_roots(sample)


def test_importing_the_core_loads_no_qt():
    code = (
        "import sys, ganstudio.cli, ganstudio.tools, ganstudio.models, ganstudio.engine, ganstudio.imaging, "
        "ganstudio.train.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (QT_MODULES,)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
