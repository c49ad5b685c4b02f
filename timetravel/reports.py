"""Plain-text tables for the CLI and the demo (what a scheduler log or a terminal shows)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from timetravel.collect.selection import SelectionResult
from timetravel.collect.snapshot import Progress, SnapshotResult
from timetravel.warehouse.layout import QUALITY_STATS_TABLE
from timetravel.warehouse.runs import RunInfo

if TYPE_CHECKING:
    from timetravel.quality.profile import QualityResult
    from timetravel.schedule.health import Health
    from timetravel.schedule.plan import Slot
    from timetravel.training.manifest import Manifest

__all__ = [
    "selection_table",
    "runs_table",
    "snapshot_table",
    "progress_line",
    "training_set_summary",
    "quality_table",
]


def selection_table(result: SelectionResult) -> str:
    """Per-stratum population, sample and design weight of one select run."""
    head = (
        f"run {result.run_id} at {result.run_time.isoformat()}: "
        f"{result.sample_size} of {result.population_size} contexts, "
        f"context_sets version {result.version}"
        + (f", panel from {result.previous_run_id}" if result.previous_run_id else "")
        + (" (already selected: nothing written)" if result.reused else "")
    )
    width = max([len("stratum"), *(len(s.stratum) for s in result.strata)])
    lines = [
        head,
        f"  {'stratum':<{width}}  {'population':>10}  {'sample':>6}  {'mean weight':>11}",
    ]
    for s in sorted(result.strata, key=lambda s: s.stratum):
        flag = f"  (all taken: target {s.target:d})" if s.capped else ""
        lines.append(
            f"  {s.stratum:<{width}}  {s.population:>10}  {s.sample:>6}  {s.weight:>11.2f}{flag}"
        )
    lines += [f"  warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def runs_table(runs: list[RunInfo]) -> str:
    """One line per run: time, id, status of each stage, and the tables it wrote."""
    if not runs:
        return "no runs yet"
    lines = [f"{'run time (UTC)':<26}  {'run id':<24}  stages"]
    for run in runs:
        stages = ", ".join(f"{name}={rec.status}" for name, rec in sorted(run.stages.items()))
        versions = ", ".join(
            f"{t}@v{v}"
            for rec in run.stages.values()
            for t, v in sorted(rec.table_versions.items())
        )
        lines.append(f"{run.run_time.isoformat():<26}  {run.run_id:<24}  {stages}  [{versions}]")
    return "\n".join(lines)


def schedule_table(slots: list[Slot]) -> str:
    """One line per run time the schedule owns: what it does about it, and why."""
    if not slots:
        return "no run times in the schedule's window yet"
    lines = [f"{'run time (UTC)':<26}  {'run id':<24}  {'action':<7}  {'lag':>8}  why"]
    for slot in slots:
        hours = slot.lag.total_seconds() / 3600
        lag = f"{hours:.1f}h" + ("!" if slot.late else " ")
        stages = f" [{', '.join(slot.stages)}]" if slot.stages else ""
        lines.append(
            f"{slot.run_time.isoformat():<26}  {slot.run_id:<24}  {slot.action:<7}  {lag:>8}  "
            f"{slot.reason}{stages}"
        )
    return "\n".join(lines)


def schedule_json(slots: list[Slot]) -> list[dict[str, object]]:
    """``timetravel schedule due --json``: one object per run time (stable keys)."""
    return [
        {
            "run_time": s.run_time.isoformat(),
            "run_id": s.run_id,
            "action": s.action,
            "stages": list(s.stages),
            "lag_s": s.lag.total_seconds(),
            "late": s.late,
            "reason": s.reason,
        }
        for s in slots
    ]


def status_text(health: Health) -> str:
    """``timetravel status``: healthy or the problems, then stages, lag, missed, coverage."""
    hours = health.lag.total_seconds() / 3600
    lines = [
        ("healthy" if health.healthy else "UNHEALTHY: " + "; ".join(health.problems)),
        f"schedule {health.cron!r} (UTC); newest run time "
        f"{health.newest_due.isoformat() if health.newest_due else 'none yet'}; "
        f"behind {hours:.1f} h (max {health.max_lag.total_seconds() / 3600:.1f} h)",
        f"{'stage':<10}  {'last ok run':<24}  {'latest run':<24}  latest status",
    ]
    for s in health.stages:
        lines.append(
            f"{s.stage:<10}  {s.last_ok_run_id or '-':<24}  {s.latest_run_id or '-':<24}  "
            f"{s.latest_status or '-'}"
        )
    recent = ", ".join(health.missed[-5:]) + (" ..." if len(health.missed) > 5 else "")
    lines.append(f"missed run times: {len(health.missed)}" + (f" ({recent})" if recent else ""))
    for source, values in sorted(health.coverage.items()):
        shown = " ".join(f"{v:.0%}" for v in values)
        lines.append(f"coverage {source}: {shown} (newest first)")
    return "\n".join(lines)


def runs_json(runs: list[RunInfo]) -> list[dict[str, object]]:
    """``timetravel runs --json``: one object per run, newest first (stable keys)."""
    return [
        {
            "run_id": run.run_id,
            "run_time": run.run_time.isoformat(),
            "stages": {
                name: {
                    "status": rec.status,
                    "created_at": rec.created_at.isoformat(),
                    "updated_at": rec.updated_at.isoformat(),
                    "table_versions": rec.table_versions,
                    "details": rec.details,
                }
                for name, rec in sorted(run.stages.items())
            },
        }
        for run in runs
    ]


def progress_line(progress: Progress) -> str:
    """'snapshot: 1200/5000 pairs (24%) in 12s | ratings 40/s ...| errors 3'."""
    import time

    elapsed = max(time.monotonic() - progress.started, 1e-9)
    done = sum(progress.done.values()) + sum(progress.failed.values())
    share = done / progress.total if progress.total else 1.0
    rates = " ".join(f"{s} {n / elapsed:.0f}/s" for s, n in sorted(progress.done.items()))
    return (
        f"snapshot: {done}/{progress.total} pairs ({share:.0%}) in {elapsed:.0f}s"
        f"{' | ' + rates if rates else ''} | errors {sum(progress.failed.values())}"
    )


def snapshot_table(result: SnapshotResult) -> str:
    """Per-source requested / fetched / failed / coverage of one snapshot run."""
    lines = [
        f"run {result.run_id}: snapshot {result.status} (attempt {result.attempt}, "
        f"{result.seconds:.1f}s)",
        f"  {'source':<16} {'requested':>9} {'fetched':>8} {'failed':>7} {'coverage':>9} "
        f"{'status':<8} {'this attempt':<30}",
    ]
    for s in result.sources:
        now = f"+{s.fetched_now} fetched, {s.failed_now} failed, {s.retried_now} retried"
        lines.append(
            f"  {s.source:<16} {s.requested:>9} {s.fetched:>8} {s.failed:>7} "
            f"{s.coverage:>9.1%} {s.status:<8} {now}"
        )
    lines.append(
        "  versions: " + ", ".join(f"{t}@v{v}" for t, v in sorted(result.table_versions.items()))
    )
    return "\n".join(lines)


def quality_table(result: QualityResult) -> str:
    """Per source and field, over the whole sample: missing and null rate, the plain mean
    and the design-weighted population estimate with its 95% interval, or the top values."""
    from timetravel.quality.estimates import Z95
    from timetravel.quality.profile import OVERALL

    lines = [
        f"run {result.run_id}: quality of its facts ({QUALITY_STATS_TABLE} v{result.version})",
        f"  {'source':<16} {'field':<20} {'missing':>8} {'null':>6} {'sample mean':>12} "
        f"{'population (95% CI)':<30} top values",
    ]
    for s in result.stats:
        if s.stratum != OVERALL:
            continue
        estimate = ""
        if s.weighted_mean is not None and s.weighted_se is not None:
            mid, half = s.weighted_mean, Z95 * s.weighted_se
            estimate = f"{mid:.3g} ({mid - half:.3g}..{mid + half:.3g})"
        sample = f"{s.mean:.3g}" if s.mean is not None else ""
        top = ", ".join(f"{v['value']} {v['count']}" for v in (s.top_values or [])[:3])
        lines.append(
            f"  {s.source:<16} {s.field:<20} {s.missing / max(s.contexts, 1):>8.1%} "
            f"{s.nulls / max(s.contexts, 1):>6.1%} {sample:>12} {estimate:<30} {top}"
        )
    if result.checks:
        lines.append(f"  checks: {result.status}")
        for c in result.checks:
            value = "" if c.value is None else f"{c.value:.4g}"
            where = f"{c.source}.{c.field}" if c.field else c.source
            lines.append(
                f"    {c.status.upper():<5} {where:<34} {c.check:<22} {value:>10}  {c.expected}"
            )
    return "\n".join(lines)


def training_set_summary(manifest: Manifest) -> str:
    """Rows, engine, the pinned fact tables and each feature's coverage."""
    lines = [
        f"training set {manifest.id}: {manifest.rows} rows ({manifest.labels.rows} labels) "
        f"on {manifest.engine}"
    ]
    if manifest.output_uri:
        lines[0] += f" -> {manifest.output_uri} ({manifest.output_format})"
    for source, pin in manifest.sources.items():
        bound = manifest.max_staleness_s.get(source)
        lines.append(
            f"  {source:<16} {pin.table} @ v{pin.version}"
            + (f", max staleness {bound / 86400:g} d" if bound is not None else "")
        )
    width = max([len("feature"), *(len(f.name) for f in manifest.features)])
    lines.append(f"  {'feature':<{width}}  version  coverage")
    for feature in manifest.features:
        lines.append(
            f"  {feature.name:<{width}}  {feature.version:>7}  "
            f"{manifest.coverage.get(feature.name, 0.0):>8.1%}"
        )
    return "\n".join(lines)
