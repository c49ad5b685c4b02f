"""Where benchmark results go: printed as JSON and appended to benchmarks/results/<name>.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def record(name: str, report: dict[str, Any]) -> None:
    """Print ``report`` and append it as one JSON line to results/<name>.json."""
    print(json.dumps(report, indent=1))
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{name}.json", "a") as fh:
        fh.write(json.dumps(report) + "\n")
