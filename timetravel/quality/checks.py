"""Checks on a run's facts: each measured, judged pass / warn / fail, the stage takes the worst.

Declared in the profile (``quality.checks``): coverage at least, null rate at most, values
within a range or a set, snapshot times within a staleness of the run time. Built in: one
fact per (context, source), and no field added, removed or retyped since the previous run
(``quality.schema_changes``). Pure: the Spark side measures (:class:`SourceFacts`, the field
statistics), this module judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from timetravel.config import QualitySettings, Threshold

__all__ = ["SourceFacts", "CheckResult", "evaluate", "judge", "worst", "STAGE_STATUS"]

Status = Literal["pass", "warn", "fail"]
# The quality stage's status in the runs index for the worst check.
STAGE_STATUS = {"pass": "ok", "warn": "warn", "fail": "failed"}


@dataclass(frozen=True)
class SourceFacts:
    """What one source's facts of the run measure, besides per-field statistics."""

    source: str
    contexts: int  # contexts in the run's context set
    with_fact: int  # of those, with a fact from the source
    rows: int  # fact rows of the run (more than with_fact: duplicates)
    oldest_snapshot: datetime | None
    fields: dict[str, str]  # name -> Spark type of the run's facts
    outside: dict[str, int] = field(default_factory=dict)  # field -> values not allowed


@dataclass(frozen=True)
class CheckResult:
    source: str
    field: str  # "" for a source-level check
    check: str
    status: Status
    value: float | None
    expected: str


def evaluate(
    settings: QualitySettings,
    facts: dict[str, SourceFacts],
    stats: dict[tuple[str, str], tuple[float, float | None, float | None]],
    run_time: datetime,
    previous_fields: dict[str, dict[str, str]] | None,
) -> list[CheckResult]:
    """Judge every check. ``stats`` maps (source, field) to (null rate, min, max) over the
    whole sample; ``previous_fields`` is the previous run's fields per source (None: no
    previous run to compare with)."""
    results: list[CheckResult] = []
    for name, measured in sorted(facts.items()):
        extra = measured.rows - measured.with_fact
        results.append(
            CheckResult(
                name, "", "one_fact_per_context", "fail" if extra else "pass", extra, "0 extra"
            )
        )
        before = (previous_fields or {}).get(name)
        if settings.schema_changes != "off" and before is not None:
            changed = _schema_changes(before, measured.fields)
            status: Status = settings.schema_changes if changed else "pass"
            results.append(
                CheckResult(name, "", "schema", status, len(changed), "; ".join(changed) or "same")
            )
    for check in settings.checks:
        measured_facts = facts.get(check.source)
        if measured_facts is None:
            continue  # the source was not snapshotted in this run: coverage says so elsewhere
        if check.min_coverage is not None:
            coverage = measured_facts.with_fact / max(measured_facts.contexts, 1)
            results.append(
                judge(check.source, "", "coverage", coverage, check.min_coverage, at_least=True)
            )
        if check.max_staleness is not None and measured_facts.oldest_snapshot is not None:
            age = (run_time - measured_facts.oldest_snapshot).total_seconds()
            results.append(judge(check.source, "", "staleness_s", abs(age), check.max_staleness))
        if check.field is None:
            continue
        null_rate, low, high = stats.get((check.source, check.field), (1.0, None, None))
        if check.max_null_rate is not None:
            results.append(
                judge(check.source, check.field, "null_rate", null_rate, check.max_null_rate)
            )
        for name, seen, bound, sign in (
            ("min_value", low, check.min_value, ">="),
            ("max_value", high, check.max_value, "<="),
        ):
            if bound is None or seen is None:
                continue
            bad = seen < bound if sign == ">=" else seen > bound
            results.append(
                CheckResult(
                    check.source,
                    check.field,
                    name,
                    "fail" if bad else "pass",
                    seen,
                    f"{sign} {bound}",
                )
            )
        if check.allowed_values is not None:
            outside = measured_facts.outside.get(check.field, 0)
            results.append(
                CheckResult(
                    check.source,
                    check.field,
                    "allowed_values",
                    "fail" if outside else "pass",
                    outside,
                    f"0 outside {check.allowed_values}",
                )
            )
    return results


def worst(results: list[CheckResult]) -> Status:
    statuses = {r.status for r in results}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"


def judge(
    source: str,
    name: str,
    check: str,
    value: float,
    threshold: Threshold,
    *,
    at_least: bool = False,
) -> CheckResult:
    def breaks(limit: float | None) -> bool:
        return limit is not None and (value < limit if at_least else value > limit)

    status: Status = (
        "fail" if breaks(threshold.fail) else "warn" if breaks(threshold.warn) else "pass"
    )
    beyond = "<" if at_least else ">"
    limits = [
        f"{level} if {beyond} {limit}"
        for level, limit in (("warn", threshold.warn), ("fail", threshold.fail))
        if limit is not None
    ]
    return CheckResult(source, name, check, status, value, ", ".join(limits) or "-")


def _schema_changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    changes = [f"{name} removed" for name in before if name not in now]
    changes += [f"{name} added" for name in now if name not in before]
    changes += [
        f"{name} {before[name]} -> {now[name]}"
        for name in now
        if name in before and before[name] != now[name]
    ]
    return changes
