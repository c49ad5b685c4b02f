"""Data faults injected into the demo fleet are caught by the check meant for them, and a
clean run passes every check (fleet -> select -> snapshot -> quality, for real)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.collect.test_snapshot import source
from timetravel.cli import app
from timetravel.collect.selection import select_contexts
from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import (
    Allocation,
    Config,
    QualityCheck,
    QualitySettings,
    SelectionSettings,
    SnapshotSettings,
    Threshold,
)
from timetravel.demo.faults import DataFault, FaultSettings
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.quality.profile import profile_run
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

WORLD = {"seed": 9, "members": 150}
CLOCK = "2026-06-01T12:00:00Z"  # frozen: clean runs get the same answers
RUN_TIMES = ["2026-06-01T06:00:00Z", "2026-06-02T06:00:00Z", "2026-06-03T06:00:00Z"]
NULLS = Threshold(fail=0.1)
DRIFT = Threshold(warn=0.1, fail=0.25)
CHECKS = [
    QualityCheck(source="ratings", field="thumbs_up", max_null_rate=NULLS, max_drift=DRIFT),
    QualityCheck(source="ratings", field="thumbs_down", max_null_rate=NULLS, max_drift=DRIFT),
    QualityCheck(source="member-profile", field="plan", max_null_rate=NULLS),
    QualityCheck(source="member-profile", field="tenure_days", max_null_rate=NULLS),
    QualityCheck(source="member-profile", min_coverage=Threshold(fail=0.9)),
]
FAULTS = {
    "ratings": [
        DataFault(field="thumbs_up", scale=100),  # a unit change
        DataFault(field="thumbs_down", shift=25),  # a shifted distribution
    ],
    "member-profile": [
        DataFault(field="plan", null_share=0.5),  # half the members' plan turns null
        DataFault(field="tenure_days", rename_to="tenure"),  # a renamed field
    ],
}
MEANT = {
    ("ratings", "thumbs_up", "drift_previous"),
    ("ratings", "thumbs_down", "drift_previous"),
    ("member-profile", "plan", "null_rate"),
    ("member-profile", "tenure_days", "null_rate"),
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    services = ("ratings", "member-profile")
    with Fleet.up(tmp_path_factory.mktemp("fleet"), world=WORLD, services=services) as up:
        up.clock.set(CLOCK)
        yield up


def test_each_data_fault_fails_its_check_and_nothing_else(  # type: ignore[no-untyped-def]
    spark, local_config: Config, fleet: Fleet, tmp_path: Path
) -> None:
    config = local_config.model_copy(
        update={
            "selection": SelectionSettings(allocation=Allocation(sample_size=150), seed=1),
            "snapshot": SnapshotSettings(
                fleet_file=str(fleet.state_dir / "fleet.json"),
                sources=[source("ratings"), source("member-profile")],
            ),
            "quality": QualitySettings(checks=CHECKS),
        }
    )
    store = DeltaStore(spark, config)
    write_population(store, World(**WORLD), RUN_TIMES[0])  # type: ignore[arg-type]

    def run(at: str) -> str:
        run_id = select_contexts(store, config.selection, at).run_id
        assert snapshot_facts(store, config, run_id).status == "ok"
        return run_id

    first, clean = run(RUN_TIMES[0]), run(RUN_TIMES[1])
    profile_run(store, config, first)
    calm = profile_run(store, config, clean)
    assert {c.status for c in calm.checks} == {"pass"}, [
        c for c in calm.checks if c.status != "pass"
    ]
    assert {c.check for c in calm.checks} >= {"drift_previous", "null_rate", "coverage"}

    try:
        for service, faults in FAULTS.items():
            fleet.set_faults(service, FaultSettings(data=faults))
        faulty = run(RUN_TIMES[2])
    finally:
        for service in FAULTS:
            fleet.set_faults(service, FaultSettings())
    result = profile_run(store, config, faulty)
    failed = {(c.source, c.field, c.check) for c in result.checks if c.status == "fail"}
    assert failed == MEANT
    others = [c for c in result.checks if (c.source, c.field, c.check) not in MEANT]
    assert {c.status for c in others} == {"pass"}, [c for c in others if c.status != "pass"]
    assert result.status == "failed"
    assert RunsIndex(config).get(faulty).status("quality") == "failed"

    # The CLI says so too, and exits non-zero (same JVM: the session is reused).
    conf = tmp_path / "quality.yaml"
    conf.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    cli = CliRunner().invoke(app, ["--conf", str(conf), "quality", "--run-id", faulty])
    assert cli.exit_code == 1, cli.output
    assert "FAIL  member-profile.tenure_days" in cli.output
    # And the spark-submit job (its script run as __main__, in this JVM's session).
    exits = run_job("run_quality.py", "--conf", str(conf), "--run-id", faulty)
    assert exits.code == 1 and "FAIL  ratings.thumbs_up" in exits.out
    missing = run_job("run_quality.py", "--conf", str(conf), "--run-id", "no-such-run")
    assert missing.code == 2 and "run_quality: error:" in missing.err
    assert "no-such-run" in missing.err and "Traceback" not in missing.err

    # The report: one self-contained HTML file, each section holding data.
    out = tmp_path / "report.html"
    written = CliRunner().invoke(
        app, ["--conf", str(conf), "report", "--run-id", faulty, "--out", str(out)]
    )
    assert written.exit_code == 0, written.output
    sections = parse_report(out.read_text())
    assert sections["checks"]["rows"] == len(result.checks) + 1  # and the header
    assert sections["checks"]["fail"] == len(MEANT)
    assert sections["histograms"]["svg"] >= 2  # thumbs_up, thumbs_down (tenure_days: all null)
    assert "ratings.thumbs_up" in str(sections["histograms"]["text"])
    assert sections["coverage"]["rows"] >= 2 and "%" in sections["coverage"]["text"]
    assert sections["drift"]["svg"] == 2  # thumbs_up and thumbs_down against the previous run
    assert "http://" not in out.read_text().replace("http://www.w3.org/2000/svg", "")

    # Reading what was stored needs no JVM: both answer in subprocesses with no Java.
    import json
    import subprocess
    import sys

    no_java = {"PATH": str(Path(sys.executable).parent), "JAVA_HOME": "/nonexistent"}
    base = [sys.executable, "-m", "timetravel.cli", "--conf", str(conf)]
    shown = subprocess.run(
        [*base, "quality", "--run-id", faulty, "--stored", "--json"],
        capture_output=True,
        text=True,
        env=no_java,
        timeout=120,
    )
    assert shown.returncode == 1, shown.stderr[-2000:]  # the stored verdict: failed
    stored = json.loads(shown.stdout)
    assert stored["status"] == "failed" and len(stored["checks"]) == len(result.checks)
    again = tmp_path / "again.html"
    reported = subprocess.run(
        [*base, "report", "--run-id", faulty, "--out", str(again)],
        capture_output=True,
        text=True,
        env=no_java,
        timeout=120,
    )
    assert reported.returncode == 0 and again.exists(), reported.stderr[-2000:]


@dataclass
class JobExit:
    code: int | str | None
    out: str
    err: str


def run_job(script: str, *args: str) -> JobExit:
    """Run ``jobs/<script>`` as spark-submit would run it (as __main__), in this process."""
    import contextlib
    import io
    import runpy
    import sys

    path = Path(__file__).resolve().parents[2] / "jobs" / script
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = [str(path), *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(path), run_name="__main__")
        code: int | str | None = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
    return JobExit(code, out.getvalue(), err.getvalue())


def parse_report(html: str) -> dict[str, dict[str, object]]:
    """Per section id: table rows, inline SVG charts, cells marked fail, and its text."""
    from html.parser import HTMLParser

    sections: dict[str, dict[str, object]] = {}

    class Reader(HTMLParser):
        current: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "section":
                self.current = found.get("id")
                sections[self.current or ""] = {"rows": 0, "svg": 0, "fail": 0, "text": ""}
            elif self.current is not None:
                section = sections[self.current]
                if tag == "tr":
                    section["rows"] = int(section["rows"]) + 1  # type: ignore[call-overload]
                elif tag == "svg":
                    section["svg"] = int(section["svg"]) + 1  # type: ignore[call-overload]
                elif tag == "td" and found.get("class") == "fail":
                    section["fail"] = int(section["fail"]) + 1  # type: ignore[call-overload]

        def handle_endtag(self, tag: str) -> None:
            if tag == "section":
                self.current = None

        def handle_data(self, data: str) -> None:
            if self.current is not None:
                sections[self.current]["text"] = str(sections[self.current]["text"]) + data

    Reader().feed(html)
    return sections
