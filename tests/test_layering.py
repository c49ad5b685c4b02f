"""The library never imports the demo: only the demo itself and the CLI's demo commands do."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "timetravel"
ALLOWED = {"cli.py"}  # `timetravel demo ...` commands, imported lazily inside them


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_library_module_imports_the_demo() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "demo" or str(relative) in ALLOWED:
            continue
        if any(n == "timetravel.demo" or n.startswith("timetravel.demo.") for n in _imports(path)):
            offenders.append(str(relative))
    assert offenders == []


def test_the_package_root_exports_timetravel_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, timetravel; assert 'timetravel.facade' not in sys.modules; "
        "from timetravel import TimeTravel; print(TimeTravel.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "timetravel.facade"
