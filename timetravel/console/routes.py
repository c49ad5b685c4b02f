"""The console's pages: runs, a run, features, training sets, look-up, and sign-in.

Server-rendered with Jinja2 (autoescaped); charts are inline SVG drawn on the server, so the
pages load nothing from anywhere else and run no script. Every page reads through the same
services the API uses (the runs index, the quality tables, the registry, the job store, the
one-row lookup), so a page and the API cannot disagree. Requests are authenticated by the
session cookie (:mod:`timetravel.console.sessions`), not by a bearer header.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from timetravel.api.deps import Services
from timetravel.api.guards import CONSOLE_PREFIX
from timetravel.console.sessions import COOKIE, Session, SessionStore
from timetravel.errors import TimeTravelError, describe_error
from timetravel.warehouse.runs import RunInfo

__all__ = ["router", "PREFIX"]

PREFIX = CONSOLE_PREFIX
STAGES = ("select", "snapshot", "quality", "schedule")
# Set and deleted alike (a browser deletes only the cookie whose attributes match).
_COOKIE_SCOPE: dict[str, Any] = {
    "path": PREFIX,
    "secure": True,
    "httponly": True,
    "samesite": "strict",
}
_FORM_LIMIT = 16 * 1024  # sign-in and rebuild forms are a few fields
_FEATURE_RUNS = 30  # availability over time: the latest runs

router = APIRouter(prefix=PREFIX, include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def _duration(seconds: float) -> str:
    """A lag as people say it: 40 s, 12 min, 5 h, 3 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= 1.5 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


templates.env.filters["duration"] = _duration


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _sessions(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.console_sessions
    return store


def _session(request: Request) -> Session | None:
    if _services(request).tokens.insecure:  # --insecure-local: everyone is admin, no sign-in
        return _sessions(request).local
    return _sessions(request).get(request.cookies.get(COOKIE))


def _render(
    request: Request, session: Session | None, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"session": session, "prefix": PREFIX, **context},
        status_code=status,
        headers={
            # Nothing from elsewhere, no script, no framing: the pages need none of it.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
            "Cache-Control": "no-store",
        },
    )


def _sign_in_first() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)


def _not_found(request: Request, session: Session, what: str) -> HTMLResponse:
    return _render(request, session, "error.html.j2", 404, title="Not found", message=what)


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields; a form too large or with too many fields reads as empty
    (every form here then refuses it), never as an error."""
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return {}
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=20)
    except ValueError:  # more than 20 fields
        return {}
    return {k: v[0] for k, v in fields.items()}


# ---------------------------------------------------------------------------- sign-in


@router.get("", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/runs", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> Response:
    return _render(request, None, "sign_in.html.j2")


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    token = (await _form(request)).get("token", "")
    role = _services(request).tokens.role_of(token) if token else None
    if role is None:
        return _render(
            request, None, "sign_in.html.j2", 401, error="That token is not valid. Try again."
        )
    sid, _ = _sessions(request).open(role)
    response = RedirectResponse(f"{PREFIX}/runs", status_code=303)
    response.set_cookie(COOKIE, sid, max_age=int(_sessions(request).ttl_s), **_COOKIE_SCOPE)
    return response


@router.post("/sign-out", response_class=HTMLResponse)
async def sign_out(request: Request) -> Response:
    session = _session(request)
    if session is not None and not SessionStore.csrf_ok(
        session, (await _form(request)).get("csrf")
    ):
        return _refused(request, session, "The form was stale or not sent from this console.")
    _sessions(request).close(request.cookies.get(COOKIE))
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, **_COOKIE_SCOPE)
    return response


def _refused(request: Request, session: Session, message: str) -> HTMLResponse:
    return _render(request, session, "error.html.j2", 403, title="Refused", message=message)


# ---------------------------------------------------------------------------- runs


def _lag_s(run: RunInfo) -> float | None:
    """Seconds from the run time to its snapshot's end (None: no snapshot yet)."""
    snapshot = run.stages.get("snapshot")
    if snapshot is None or snapshot.status in ("running", "missed"):
        return None
    return (snapshot.updated_at - run.run_time).total_seconds()


def _run_status(run: RunInfo) -> str:
    """One word for a run: the worst of its stages."""
    order = ("failed", "missed", "running", "partial", "warn", "ok")
    seen = {r.status for r in run.stages.values()}
    return next((s for s in order if s in seen), "ok")


def _day(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, status: str = "", since: str = "", until: str = "") -> Response:
    session = _session(request)
    if session is None:
        return _sign_in_first()
    runs = _services(request).tt.runs()
    start, end = _day(since[:10]), _day(until[:10])
    rows: list[dict[str, Any]] = []
    for run in runs:
        word = _run_status(run)
        if status and word != status:
            continue
        if start and run.run_time < start:
            continue
        if end and run.run_time.date() > end.date():
            continue
        rows.append(
            {
                "run": run,
                "word": word,
                "stages": {s: run.status(s) for s in STAGES},
                "coverage": run.coverage(),
                "lag_s": _lag_s(run),
            }
        )
    sources = sorted({name for row in rows for name in row["coverage"]})
    return _render(
        request,
        session,
        "runs.html.j2",
        rows=rows,
        sources=sources,
        stages=STAGES,
        total=len(runs),
        missed=sum(1 for r in runs if r.status("schedule") == "missed"),
        timeline=_timeline([(r["run"].run_time, r["word"]) for r in reversed(rows)]),
        filters={"status": status, "since": since[:10], "until": until[:10]},
        statuses=("ok", "warn", "partial", "running", "missed", "failed"),
    )


_COLOURS = {
    "ok": "#3b8a4a",
    "warn": "#c9a227",
    "partial": "#c9a227",
    "running": "#4a7bd0",
    "missed": "#888",
    "failed": "#c0392b",
}


def _timeline(points: list[tuple[datetime, str]], width: int = 900, height: int = 36) -> str:
    """Runs on a time axis, one tick each, coloured by status."""
    if not points:
        return ""
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds() or 1.0
    ticks = []
    for at, word in points:
        x = 6 + (width - 12) * (at - first).total_seconds() / span
        ticks.append(
            f'<rect x="{x - 2:.1f}" y="4" width="4" height="{height - 18}" '
            f'fill="{_COLOURS.get(word, "#888")}"><title>{at:%Y-%m-%d %H:%M} {word}</title></rect>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'role="img" aria-label="runs over time">'
        + "".join(ticks)
        + f'<text x="0" y="{height - 2}" font-size="10">{first:%Y-%m-%d}</text>'
        f'<text x="{width}" y="{height - 2}" font-size="10" text-anchor="end">'
        f"{last:%Y-%m-%d}</text></svg>"
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> Response:
    from timetravel.quality.profile import OVERALL, latest_before, read_quality, snapshotted
    from timetravel.quality.report import drawn_histograms, drift_series, recent_runs, svg_series

    session = _session(request)
    if session is None:
        return _sign_in_first()
    services = _services(request)
    config = services.tt.config
    runs = services.tt.runs()
    run = next((r for r in runs if r.run_id == run_id), None)
    if run is None:
        return _not_found(request, session, f"There is no run {run_id!r}.")
    select = run.stages.get("select")
    strata = (select.details.get("strata") or []) if select else []
    for stratum in strata:
        sample = stratum.get("sample") or 0
        stratum["weight"] = stratum["population"] / sample if sample else None
    quality = None
    try:
        quality = read_quality(config, run_id)
    except TimeTravelError:
        pass  # no quality stage yet: the page says so
    histograms, drift, unreadable = [], {}, None
    try:
        if quality is not None:
            previous = latest_before(runs, run, snapshotted)
            histograms = drawn_histograms(config, run, previous, quality)
            recent = recent_runs(runs, run)
            drift = {k: svg_series(v) for k, v in drift_series(config, recent).items()}
        errors = _errors_by_class(services, run)
    except Exception as exc:  # noqa: BLE001 - e.g. facts vacuumed away: the page says so
        unreadable, errors = describe_error(exc), []
    versions = {
        stage: record.table_versions
        for stage, record in run.stages.items()
        if record.table_versions
    }
    return _render(
        request,
        session,
        "run.html.j2",
        run=run,
        strata=strata,
        sources=(run.stages["snapshot"].details.get("sources") or {})
        if "snapshot" in run.stages
        else {},
        errors=errors,
        unreadable=unreadable,
        quality=quality,
        overall=[s for s in quality.stats if s.stratum == OVERALL] if quality else [],
        histograms=histograms,
        drift=drift,
        versions=versions,
    )


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
def run_report(request: Request, run_id: str) -> Response:
    """The run's self-contained quality report (what `timetravel report` writes)."""
    from timetravel.quality.report import render_report

    session = _session(request)
    if session is None:
        return _sign_in_first()
    try:
        html = render_report(_services(request).tt.config, run_id)
    except TimeTravelError as exc:
        return _not_found(request, session, str(exc))
    return HTMLResponse(
        html,
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )


def _errors_by_class(services: Services, run: RunInfo) -> list[tuple[str, str, int]]:
    """(source, error class, failed fetches) of the run's snapshot, from snapshot_errors at
    the version its snapshot recorded."""
    from timetravel.warehouse.deltars import query_table, sql_text
    from timetravel.warehouse.layout import SNAPSHOT_ERRORS_TABLE

    snapshot = run.stages.get("snapshot")
    version = snapshot.table_versions.get(SNAPSHOT_ERRORS_TABLE) if snapshot else None
    if version is None:
        return []
    rows = query_table(
        services.tt.config,
        SNAPSHOT_ERRORS_TABLE,
        version=version,
        columns=["source", "error_class"],
        where=f"run_id = {sql_text(run.run_id)}",
    ).to_pylist()
    counted = Counter((r["source"], r["error_class"] or "Unknown") for r in rows)
    return [(s, c, n) for (s, c), n in sorted(counted.items())]


# ---------------------------------------------------------------------------- features


@router.get("/features", response_class=HTMLResponse)
def features_page(request: Request, q: str = "") -> Response:
    from timetravel.quality.report import svg_series

    session = _session(request)
    if session is None:
        return _sign_in_first()
    services = _services(request)
    needle = q.strip().lower()[:200]
    found = []
    coverages = [r.coverage() for r in reversed(services.tt.runs(limit=_FEATURE_RUNS))]
    for feature in services.tt.features():
        sources = list(feature["reads"])
        text = " ".join(
            [feature["name"], feature["owner"] or "", *feature["tags"], *sources]
        ).lower()
        if needle and needle not in text:
            continue
        # Availability over time: per run, the lowest coverage among the sources it reads.
        series = [
            min((c.get(s) for s in sources), key=lambda v: -1 if v is None else v)
            for c in coverages
        ]
        # The registry's versions only: tt.feature() would check availability once more.
        versions = services.tt.registry.versions(feature["name"])
        found.append({**feature, "versions": versions, "availability": svg_series(series)})
    return _render(request, session, "features.html.j2", features=found, q=q[:200])


# ---------------------------------------------------------------------------- training sets


@router.get("/training-sets", response_class=HTMLResponse)
def training_sets_page(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _sign_in_first()
    return _render(
        request, session, "training_sets.html.j2", jobs=_services(request).job_store.list()
    )


def _lineage(manifest: dict[str, Any], runs: list[RunInfo]) -> list[dict[str, Any]]:
    """Training set -> Delta versions -> the runs those versions hold, per source; the
    encoder versions are listed beside it."""
    out = []
    for source, pin in sorted((manifest.get("sources") or {}).items()):
        table, version = pin["table"], pin["version"]
        holding = [
            r.run_id
            for r in sorted(runs, key=lambda r: r.run_time)
            if "snapshot" in r.stages
            and r.stages["snapshot"].table_versions.get(table, version + 1) <= version
        ]
        out.append({"source": source, "table": table, "version": version, "runs": holding})
    return out


@router.get("/training-sets/{job_id}", response_class=HTMLResponse)
def training_set_page(request: Request, job_id: str) -> Response:
    import json

    from timetravel.api.routes.training_sets import output_dataset, rows_page

    session = _session(request)
    if session is None:
        return _sign_in_first()
    services = _services(request)
    record = services.job_store.get(job_id)
    if record is None:
        return _not_found(request, session, f"There is no training set {job_id!r}.")
    preview: list[dict[str, Any]] = []
    columns: list[str] = []
    if record.built:
        preview = rows_page(output_dataset(services, record), 0, 20)
        columns = list(preview[0]) if preview else []
    return _render(
        request,
        session,
        "training_set.html.j2",
        job=record,
        manifest=json.dumps(record.manifest or {}, indent=2, default=str),
        lineage=_lineage(record.manifest or {}, services.tt.runs()),
        preview=preview,
        columns=columns,
        rebuilt=request.query_params.get("rebuilt"),
    )


@router.get("/training-sets/{job_id}/download")
def training_set_download(request: Request, job_id: str, format: str = "csv") -> Response:
    from timetravel.api.routes.training_sets import output_dataset, stream_rows

    session = _session(request)
    if session is None:
        return _sign_in_first()
    services = _services(request)
    record = services.job_store.get(job_id)
    if record is None or not record.built:
        return _not_found(request, session, f"Training set {job_id!r} has no rows to download.")
    if format not in ("csv", "parquet"):
        return _render(
            request,
            session,
            "error.html.j2",
            422,
            title="Invalid input",
            message="format must be csv or parquet",
        )
    kind = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return StreamingResponse(
        stream_rows(output_dataset(services, record), format),
        media_type=kind,
        headers={"Content-Disposition": f'attachment; filename="{job_id}.{format}"'},
    )


@router.post("/training-sets/{job_id}/rebuild", response_class=HTMLResponse)
async def training_set_rebuild(request: Request, job_id: str) -> Response:
    from timetravel.api.jobs import JobQueueFullError

    session = _session(request)
    if session is None:
        return _sign_in_first()
    if not SessionStore.csrf_ok(session, (await _form(request)).get("csrf")):
        return _refused(request, session, "The form was stale or not sent from this console.")
    if session.role != "admin":
        return _refused(
            request, session, "Rebuilding needs the admin role; you are signed in as reader."
        )
    services = _services(request)
    record = services.job_store.get(job_id)
    if record is None or not record.built:
        return _not_found(request, session, f"Training set {job_id!r} cannot be rebuilt.")
    try:
        new = services.jobs.submit(record.rebuild_request(), rebuild_of=job_id)
    except JobQueueFullError as exc:
        return _render(request, session, "error.html.j2", 429, title="Busy", message=str(exc))
    return RedirectResponse(f"{PREFIX}/training-sets/{new.id}?rebuilt={job_id}", 303)


# ---------------------------------------------------------------------------- look-up


@router.get("/lookup", response_class=HTMLResponse)
async def lookup_page(
    request: Request, key: str = "", as_of: str = "", features: str = "", max_staleness: str = ""
) -> Response:
    from timetravel.times import check_instant
    from timetravel.training.job import parse_staleness

    session = _session(request)
    if session is None:
        return _sign_in_first()
    services = _services(request)
    form = {
        "key": key[:40],
        "as_of": as_of[:64],
        "features": features[:2000],
        "max_staleness": max_staleness[:1024],
    }
    result, error = None, None
    if key or as_of:
        try:
            number = int(key)
            if not 0 <= number <= 2**63 - 1:
                raise ValueError
        except ValueError:
            error = "The key must be a whole number from 0 to 2^63 - 1."
        else:
            try:
                instant = check_instant(as_of)
                names = [n.strip() for n in features.split(",") if n.strip()] or None
                bound = parse_staleness(max_staleness or None, what="max staleness")
                lookup = partial(
                    services.tt.lookup, number, instant, features=names, max_staleness=bound
                )
                result = await asyncio.get_running_loop().run_in_executor(services.lookups, lookup)
            except (ValueError, TimeTravelError) as exc:
                error = str(exc)
    names = [f["name"] for f in services.tt.features()]
    return _render(
        request,
        session,
        "lookup.html.j2",
        form=form,
        result=result,
        error=error,
        names=names,
        status=422 if error else 200,
    )
