"""One self-contained HTML file about a run's quality (no network needed to open it).

Sections: the checks with their values; histograms of each numeric field, this run against
the previous one; coverage per stratum over the last runs; drift scores over time. Charts
are inline SVG drawn here, so the file carries everything it shows. Read through delta-rs
(no JVM): ``timetravel report --run-id R --out report.html``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from timetravel.config import Config
from timetravel.errors import TableNotFoundError
from timetravel.quality.profile import (
    OVERALL,
    QUALITY_STAGE,
    QualityResult,
    latest_before,
    read_quality,
    snapshotted,
)
from timetravel.warehouse.deltars import query_table, sql_text
from timetravel.warehouse.layout import QUALITY_CHECKS_TABLE, QUALITY_STATS_TABLE, facts_table
from timetravel.warehouse.runs import RunInfo, RunsIndex

__all__ = [
    "render_report",
    "FieldHistogram",
    "field_histogram",
    "drawn_histograms",
    "coverage_series",
    "drift_series",
    "svg_histogram",
    "svg_series",
    "recent_runs",
]

LAST_RUNS = 10
BINS = 20


@dataclass(frozen=True)
class FieldHistogram:
    source: str
    field: str
    edges: list[float]
    current: list[int]
    previous: list[int] | None


def render_report(config: Config, run_id: str) -> str:
    """The HTML text of ``run_id``'s quality report."""
    import jinja2

    result = read_quality(config, run_id)
    runs = RunsIndex(config).list()
    run = next(r for r in runs if r.run_id == run_id)
    previous = latest_before(runs, run, snapshotted)
    recent = recent_runs(runs, run)
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = Path(__file__).with_name("report.html.j2").read_text(encoding="utf-8")
    return environment.from_string(template).render(
        run=run,
        result=result,
        previous=previous,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        histograms=drawn_histograms(config, run, previous, result),
        coverage=coverage_series(config, recent),
        drift=drift_series(config, recent),
        svg_series=svg_series,
    )


def drawn_histograms(
    config: Config, run: RunInfo, previous: RunInfo | None, result: QualityResult
) -> list[tuple[FieldHistogram, str]]:
    """Each numeric field of ``result`` with values: this run's histogram against
    ``previous``'s, and its SVG."""
    numeric = sorted(
        {(s.source, s.field) for s in result.stats if s.stratum == OVERALL and s.kind == "numeric"}
    )
    histograms = [field_histogram(config, run, previous, source, name) for source, name in numeric]
    return [(h, svg_histogram(h)) for h in histograms if h.current]


def field_histogram(
    config: Config, run: RunInfo, previous: RunInfo | None, source: str, name: str
) -> FieldHistogram:
    def values(of: RunInfo | None) -> np.ndarray | None:
        if of is None:
            return None
        version = of.stages["snapshot"].table_versions.get(facts_table(source))
        if version is None:
            return None
        column = query_table(
            config,
            facts_table(source),
            version=version,
            columns=[name],
            where=f"run_id = {sql_text(of.run_id)}",
        ).column(0)
        data = np.array([v for v in column.to_pylist() if v is not None], dtype=float)
        return data

    now, before = values(run), values(previous)
    both = np.concatenate([x for x in (now, before) if x is not None and len(x)] or [np.zeros(0)])
    if not len(both) or now is None:
        return FieldHistogram(source, name, [], [], None)
    edges = np.histogram_bin_edges(both, bins=BINS)
    current = np.histogram(now, bins=edges)[0].tolist()
    earlier = np.histogram(before, bins=edges)[0].tolist() if before is not None else None
    return FieldHistogram(source, name, edges.tolist(), current, earlier)


def recent_runs(runs: list[RunInfo], run: RunInfo) -> list[RunInfo]:
    """The last LAST_RUNS runs up to ``run`` with a quality stage, oldest first."""
    return sorted(
        (r for r in runs if r.run_time <= run.run_time and r.status(QUALITY_STAGE)),
        key=lambda r: r.run_time,
    )[-LAST_RUNS:]


def coverage_series(config: Config, recent: list[RunInfo]) -> dict[str, Any]:
    """Per source: strata x runs, the share of contexts with a fact."""
    if not recent:
        return {}
    ids = ", ".join(sql_text(r.run_id) for r in recent)
    rows = query_table(
        config,
        QUALITY_STATS_TABLE,
        columns=["run_id", "computed_at", "source", "field", "stratum", "contexts", "facts"],
        where=f"run_id IN ({ids}) AND stratum <> {sql_text(OVERALL)}",
    ).to_pylist()
    latest: dict[str, Any] = {}
    for row in rows:
        latest[row["run_id"]] = max(
            latest.get(row["run_id"], row["computed_at"]), row["computed_at"]
        )
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        if row["computed_at"] != latest[row["run_id"]]:
            continue
        by_stratum = table.setdefault(row["source"], {}).setdefault(row["stratum"], {})
        by_stratum[row["run_id"]] = row["facts"] / row["contexts"] if row["contexts"] else 0.0
    return {"runs": [r.run_id for r in recent], "sources": table}


def drift_series(config: Config, recent: list[RunInfo]) -> dict[str, list[float | None]]:
    """(source.field, check) -> drift value per recent run (None where not measured)."""
    if not recent:
        return {}
    ids = ", ".join(sql_text(r.run_id) for r in recent)
    try:
        rows = query_table(
            config,
            QUALITY_CHECKS_TABLE,
            columns=["run_id", "computed_at", "source", "field", "check", "value"],
            where=f"run_id IN ({ids}) AND \"check\" LIKE 'drift%'",
        ).to_pylist()
    except TableNotFoundError:  # no check has been recorded yet: nothing to chart
        return {}
    order = {r.run_id: i for i, r in enumerate(recent)}
    series: dict[str, list[float | None]] = {}
    for row in sorted(rows, key=lambda r: r["computed_at"]):
        key = f"{row['source']}.{row['field']} {row['check']}"
        values = series.setdefault(key, [None] * len(recent))
        values[order[row["run_id"]]] = row["value"]
    return series


def svg_histogram(h: FieldHistogram, width: int = 360, height: int = 120) -> str:
    peak = max(h.current + (h.previous or [])) or 1
    bar = width / len(h.current)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}">']
    for i, count in enumerate(h.current):
        tall = height * count / peak
        parts.append(
            f'<rect x="{i * bar + 1:.1f}" y="{height - tall:.1f}" width="{bar - 2:.1f}" '
            f'height="{tall:.1f}" fill="#4a7bd0"><title>{count}</title></rect>'
        )
    for i, count in enumerate(h.previous or []):
        tall = height * count / peak
        parts.append(
            f'<rect x="{i * bar + 1:.1f}" y="{height - tall:.1f}" width="{bar - 2:.1f}" '
            f'height="{tall:.1f}" fill="none" stroke="#d06a4a" stroke-width="1.5"/>'
        )
    parts.append(
        f'<text x="0" y="{height + 13}" font-size="10">{h.edges[0]:.4g}</text>'
        f'<text x="{width}" y="{height + 13}" font-size="10" text-anchor="end">'
        f"{h.edges[-1]:.4g}</text></svg>"
    )
    return "".join(parts)


def svg_series(values: list[float | None], width: int = 240, height: int = 40) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return ""
    top = max(max(known), 0.25) or 1.0
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - height * v / top:.1f}"
        for i, v in enumerate(values)
        if v is not None
    )
    line = height - height * 0.25 / top
    # A dot per value as well: one run alone draws no line.
    dots = "".join(
        f'<circle cx="{i * step:.1f}" cy="{height - height * v / top:.1f}" r="2.5" '
        f'fill="#4a7bd0"><title>{v:.3g}</title></circle>'
        for i, v in enumerate(values)
        if v is not None
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<line x1="0" x2="{width}" y1="{line:.1f}" y2="{line:.1f}" stroke="#d06a4a" '
        f'stroke-dasharray="3,3"/><polyline points="{points}" fill="none" stroke="#4a7bd0" '
        f'stroke-width="2"/>{dots}</svg>'
    )
