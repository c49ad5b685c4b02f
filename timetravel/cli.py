"""The ``timetravel`` command line: a thin shell over the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from timetravel.facade import Engine
    from timetravel.training.dataset import OutputFormat

from timetravel.config import Config, load_config
from timetravel.errors import TimeTravelError

app = typer.Typer(
    help="Point-in-time snapshots of online facts and leakage-free training sets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="The demo streaming service and guided tours.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
schedule_app = typer.Typer(
    help="Runs by themselves: what is due at the schedule's run times, and running it.",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ConfOption = Annotated[
    Path | None,
    typer.Option("--conf", help="YAML profile (default: $TIMETRAVEL_CONF, else conf/local.yaml)."),
]


def _config(ctx: typer.Context) -> Config:
    return ctx.obj["config"]


def _store(config: Config):
    """A DeltaStore on a fresh SparkSession, saying so first: a JVM takes seconds to start."""
    import time

    from timetravel.runtime.spark import get_spark
    from timetravel.warehouse.store import DeltaStore

    where = config.spark.log_file or "the terminal (--verbose)"
    typer.echo(f"starting Spark ({config.spark.master}; its log: {where})…", err=True)
    started = time.monotonic()
    spark = get_spark(config)
    typer.echo(f"Spark ready in {time.monotonic() - started:.1f} s", err=True)
    return DeltaStore(spark, config)


@app.callback()
def _main(
    ctx: typer.Context,
    conf: ConfOption = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Spark's own log lines in the terminal.")
    ] = False,
) -> None:
    config = load_config(conf)
    if verbose:
        spark = config.spark.model_copy(update={"log_file": None})
        config = config.model_copy(update={"spark": spark})
    ctx.obj = {"config": config}


@app.command("setup-jars")
def setup_jars(ctx: typer.Context) -> None:
    """Fetch the Delta and S3A jars from Maven Central into the project cache (once)."""
    from timetravel.runtime.jars import fetch_jars

    jars = fetch_jars(_config(ctx).spark.jars_dir)
    typer.echo(f"{len(jars)} jars ready in {Path(_config(ctx).spark.jars_dir).resolve()}")


@app.command("jars")
def jars(
    ctx: typer.Context,
    submit_args: Annotated[
        bool, typer.Option("--submit-args", help="Print '--jars a,b,...' for spark-submit.")
    ] = False,
) -> None:
    """List the cached jars (fetching them first if needed)."""
    from timetravel.runtime.jars import fetch_jars, spark_submit_args

    if submit_args:
        typer.echo(" ".join(spark_submit_args(_config(ctx).spark.jars_dir)))
        return
    for jar in fetch_jars(_config(ctx).spark.jars_dir):
        typer.echo(str(jar))


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the validated configuration."""
    import yaml

    typer.echo(yaml.safe_dump(_config(ctx).model_dump(), sort_keys=False).rstrip())


@demo_app.command("run")
def demo_run(ctx: typer.Context) -> None:
    """Run the demo end to end: fleet, time moving, population export to Delta."""
    from timetravel.demo.tour import run_demo

    config = _config(ctx)
    typer.echo(f"timetravel demo: profile {config.profile!r}, warehouse {config.warehouse.root}")
    run_demo(config, lambda: _store(config), say=typer.echo)


@demo_app.command("up")
def demo_up(
    ctx: typer.Context,
    clock_at: Annotated[
        str | None,
        typer.Option(help="Freeze the fleet's clock at this instant (default: real time)."),
    ] = None,
    members: Annotated[int | None, typer.Option(help="Override demo.members.")] = None,
) -> None:
    """Start the demo services in the background; print their URLs."""
    from timetravel.demo.fleet import FLEET_FILE, Fleet

    settings = _config(ctx).demo
    world = settings.world_args() | ({"members": members} if members else {})
    fleet = Fleet.up(settings.state_dir, world=world, clock_at=clock_at)
    for service, url in fleet.urls.items():
        typer.echo(f"{service:<16} {url}")
    typer.echo(f"fleet file: {fleet.state_dir / FLEET_FILE}  (stop with `timetravel demo down`)")


@demo_app.command("down")
def demo_down(ctx: typer.Context) -> None:
    """Stop the demo services started by `demo up`."""
    from timetravel.demo.fleet import Fleet

    Fleet.load(_config(ctx).demo.state_dir).down()
    typer.echo("fleet stopped")


@demo_app.command("clock")
def demo_clock(
    ctx: typer.Context,
    set_to: Annotated[str | None, typer.Option("--set", help="Jump to this instant.")] = None,
    advance_hours: Annotated[
        float | None, typer.Option("--advance-hours", help="Move simulated time forward.")
    ] = None,
    rate: Annotated[
        float, typer.Option(help="Simulated seconds per real second after --set (0 = frozen).")
    ] = 0.0,
    real: Annotated[bool, typer.Option("--real", help="Back to real time.")] = False,
) -> None:
    """Show or control the fleet's shared clock."""
    from datetime import timedelta

    from timetravel.demo.fleet import Fleet

    clock = Fleet.load(_config(ctx).demo.state_dir).clock
    if real:
        clock.reset()
    elif set_to is not None:
        clock.set(set_to, rate=rate)
    elif advance_hours is not None:
        clock.advance(timedelta(hours=advance_hours))
    typer.echo(f"fleet clock: {clock.now().isoformat()}")


@demo_app.command("population")
def demo_population(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(help="Population as of this instant (UTC).")],
) -> None:
    """Export the demo population as of an instant to the Delta table 'population'."""
    from timetravel.demo.population import POPULATION_TABLE, write_population
    from timetravel.demo.world import World
    from timetravel.times import to_utc

    config = _config(ctx)
    store = _store(config)
    try:
        instant = to_utc(as_of)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--as-of") from None
    version = write_population(store, World(**config.demo.world_args()), instant)
    where = store.path(POPULATION_TABLE)
    typer.echo(
        f"population as of {instant.isoformat()} -> "
        f"{where} {'(already exported)' if version is None else f'version {version}'}"
    )


@app.command("select")
def select(
    ctx: typer.Context,
    run_time: Annotated[
        str, typer.Option(help="Logical run time (UTC), e.g. 2026-06-01T00:00:00Z.")
    ],
    run_id: Annotated[str | None, typer.Option(help="Default: run-<run time>.")] = None,
) -> None:
    """Select the stratified context set of one run."""
    from timetravel.collect.selection import select_contexts
    from timetravel.reports import selection_table
    from timetravel.times import to_utc

    try:
        at = to_utc(run_time)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--run-time") from None
    config = _config(ctx)
    result = select_contexts(_store(config), config.selection, at, run_id=run_id)
    typer.echo(selection_table(result))


@app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Option(help="The run whose context set to snapshot.")],
) -> None:
    """Fetch every source's facts for a run's contexts into versioned Delta tables."""
    from timetravel.collect.snapshot import snapshot_facts
    from timetravel.reports import progress_line, snapshot_table

    config = _config(ctx)
    result = snapshot_facts(
        _store(config), config, run_id, on_progress=lambda p: typer.echo(progress_line(p), err=True)
    )
    typer.echo(snapshot_table(result))
    if result.status == "failed":
        raise typer.Exit(code=1)


@app.command("quality")
def quality(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Option(help="The run whose facts to check.")],
    stored: Annotated[
        bool,
        typer.Option("--stored", help="Show what the run's quality stage stored (no Spark)."),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Statistics and checks of a run's facts (per source, field and stratum, with population
    estimates); exits 1 when a check fails. --stored reads the last result instead."""
    import json
    from dataclasses import asdict

    from timetravel.quality.profile import profile_run, read_quality
    from timetravel.reports import quality_table

    config = _config(ctx)
    result = read_quality(config, run_id) if stored else profile_run(_store(config), config, run_id)
    if json_out:
        body = {
            "run_id": run_id,
            "status": result.status,
            "version": result.version,
            "checks": [asdict(c) for c in result.checks],
            "stats": [asdict(s) for s in result.stats],
        }
        typer.echo(json.dumps(body, default=str))
    else:
        typer.echo(quality_table(result))
    if result.status == "failed":
        raise typer.Exit(code=1)


@app.command("report")
def report(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Option(help="The run whose quality to report.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write a run's quality as one self-contained HTML file (reads Delta; no Spark)."""
    from timetravel.quality.report import render_report

    html = render_report(_config(ctx), run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    typer.echo(f"report of {run_id}: {out.resolve()} ({len(html) // 1024} KiB)")


@schedule_app.command("due")
def schedule_due(
    ctx: typer.Context,
    json_out: JsonOption = False,
) -> None:
    """What the schedule owes now, and why (reads the runs index; no Spark)."""
    import json
    from datetime import UTC, datetime

    from timetravel.reports import schedule_json, schedule_table
    from timetravel.schedule.plan import plan_slots
    from timetravel.warehouse.runs import RunsIndex

    config = _config(ctx)
    slots = plan_slots(config.schedule, RunsIndex(config).list(), datetime.now(UTC))
    if json_out:
        typer.echo(json.dumps(schedule_json(slots), indent=2))
    else:
        typer.echo(f"schedule {config.schedule.cron!r} (UTC), catch_up={config.schedule.catch_up}")
        typer.echo(schedule_table(slots))


@schedule_app.command("run")
def schedule_run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due now and exit (for cron).")
    ] = False,
) -> None:
    """Run the due stages at each run time (a long-lived loop, or one pass with --once)."""
    import signal
    import threading

    from timetravel.schedule.runner import run_due, run_forever
    from timetravel.warehouse.leases import LeaseHeldError

    config = _config(ctx)
    store = _store(config)
    if once:
        try:
            outcomes = run_due(store, config, say=typer.echo)
        except LeaseHeldError as exc:
            # Another scheduler is active: it owns the due run times; nothing is wrong here.
            typer.echo(f"not running: {exc}", err=True)
            return
        if any(o.status == "failed" for o in outcomes):
            raise typer.Exit(code=1)
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run_forever(store, config, stop=stop, say=typer.echo)


@app.command("maintain")
def maintain(
    ctx: typer.Context,
    vacuum_retain: Annotated[
        str | None,
        typer.Option(
            "--vacuum-retain",
            help="VACUUM files removed longer ago than this, e.g. 30d (default: "
            "maintenance.vacuum_retain; none: no VACUUM). Refused if a manifest pins them.",
        ),
    ] = None,
    manifest_root: Annotated[
        list[str] | None,
        typer.Option("--manifest-root", help="Another folder of training-set manifests."),
    ] = None,
    optimize: Annotated[
        bool, typer.Option("--optimize/--no-optimize", help="Compact and checkpoint.")
    ] = True,
) -> None:
    """Compact, checkpoint and VACUUM the warehouse's tables without breaking a pinned version."""
    from timetravel.schedule.maintenance import maintain as run_maintenance
    from timetravel.times import parse_duration

    config = _config(ctx)
    retain_text = vacuum_retain or config.maintenance.vacuum_retain
    try:
        retain = parse_duration(retain_text) if retain_text else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--vacuum-retain") from None
    reports = run_maintenance(
        _store(config),
        config,
        optimize=optimize,
        vacuum_retain=retain,
        manifest_roots=manifest_root or [],
        say=typer.echo,
    )
    typer.echo(f"maintained {len(reports)} tables")


@app.command("status")
def status(
    ctx: typer.Context,
    last: Annotated[int, typer.Option(min=1, help="Runs the coverage covers.")] = 7,
    json_out: JsonOption = False,
    at: Annotated[
        str | None, typer.Option(help="Judge as of this instant (default: now), e.g. in a replay.")
    ] = None,
) -> None:
    """Run health; exits 1 when the schedule is behind its max lag or a stage's latest run
    failed (reads the runs index; no Spark)."""
    import json
    from datetime import UTC, datetime

    from timetravel.reports import status_text
    from timetravel.schedule.health import assess
    from timetravel.times import check_instant
    from timetravel.warehouse.runs import RunsIndex

    config = _config(ctx)
    try:
        now = check_instant(at) if at else datetime.now(UTC)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from None
    health = assess(config.schedule, RunsIndex(config).list(), now, last_runs=last)
    typer.echo(json.dumps(health.as_dict(), indent=2) if json_out else status_text(health))
    if not health.healthy:
        raise typer.Exit(code=1)


@app.command("runs")
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many runs to show.")] = 20,
    json_out: JsonOption = False,
) -> None:
    """List runs, newest first, with the status of each stage (reads the runs index through
    delta-rs; no Spark)."""
    import json

    from timetravel.reports import runs_json, runs_table
    from timetravel.warehouse.runs import RunsIndex

    listed = RunsIndex(_config(ctx)).list(limit=limit)
    typer.echo(json.dumps(runs_json(listed), indent=2) if json_out else runs_table(listed))


@app.command("features")
def features(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only features reading this source.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only features with this tag.")] = None,
    json_out: JsonOption = False,
) -> None:
    """List the feature encoders, and whether this warehouse can compute each (no Spark)."""
    import json

    from timetravel.facade import TimeTravel

    listed = TimeTravel(_config(ctx)).features(source=source, tag=tag)
    if json_out:
        typer.echo(json.dumps(listed, indent=2, default=str))
        return
    for feature in listed:
        reads = ", ".join(f"{s}.{'/'.join(f)}" for s, f in feature["reads"].items())
        state = "" if feature["available"] else f"  [unavailable: {feature['unavailable_reason']}]"
        typer.echo(
            f"{feature['name']:<28} v{feature['version']}  {feature['output']:<7} {reads}{state}"
        )


@app.command("training-set")
def training_set(
    ctx: typer.Context,
    labels: Annotated[
        str, typer.Option(help="Labels: a .parquet/.csv file, Parquet folder or Delta table.")
    ],
    out: Annotated[str, typer.Option(help="Output folder: data/, labels/, manifest.json.")],
    features: Annotated[
        str | None,
        typer.Option(help="Comma-separated feature names (default: every available one)."),
    ] = None,
    max_staleness: Annotated[
        list[str] | None,
        typer.Option(help="e.g. 14d for all sources, or SOURCE=DURATION (repeatable)."),
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help="auto, spark or duckdb (default: query.engine).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="delta or parquet.")] = "delta",
    label_time: Annotated[str, typer.Option(help="Name of the label time column.")] = "label_time",
    overwrite: Annotated[
        bool, typer.Option(help="Replace a completed training set at --out.")
    ] = False,
) -> None:
    """Build a point-in-time training set from labels; write it with its manifest."""
    from timetravel.facade import TimeTravel
    from timetravel.reports import training_set_summary
    from timetravel.training.job import build_training_set, parse_staleness

    config = _config(ctx)
    tt = TimeTravel(config)
    names = [f.strip() for f in features.split(",") if f.strip()] if features else None
    manifest = build_training_set(
        tt,
        labels,
        out,
        features=names,
        max_staleness=parse_staleness(max_staleness or []),
        engine=cast("Engine | None", engine),  # checked by the facade, naming the known ones
        fmt=cast("OutputFormat", fmt),  # checked by TrainingSet.write
        label_time=label_time,
        overwrite=overwrite,
    )
    typer.echo(training_set_summary(manifest))
    typer.echo(f"manifest: {out.rstrip('/')}/manifest.json")


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    manifest: Annotated[str, typer.Option(help="A manifest.json, or the folder holding it.")],
    out: Annotated[str, typer.Option(help="Where to write the rebuilt training set.")],
    engine: Annotated[str | None, typer.Option(help="auto, spark or duckdb.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a training set at --out.")] = False,
) -> None:
    """Rebuild a training set bit for bit from its manifest (pinned Delta versions)."""
    from timetravel.facade import TimeTravel
    from timetravel.reports import training_set_summary

    rebuilt = TimeTravel(_config(ctx)).rebuild(manifest, engine=engine)  # type: ignore[arg-type]
    typer.echo(training_set_summary(rebuilt.write(out, overwrite=overwrite)))


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default: api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: api.port).")] = None,
    insecure_local: Annotated[
        bool,
        typer.Option(
            "--insecure-local", help="No tokens: everyone is admin; binds to 127.0.0.1 only."
        ),
    ] = False,
) -> None:
    """Serve the as-of query API (uvicorn); docs at /docs."""
    import uvicorn

    from timetravel.api import create_app
    from timetravel.api.auth import TokenTable, load_tokens

    config = _config(ctx)
    tokens = load_tokens(config.api.tokens_file)
    bind = host or config.api.host
    if insecure_local:
        if host not in (None, "127.0.0.1", "localhost"):
            raise typer.BadParameter(
                "--insecure-local binds to 127.0.0.1 only", param_hint="--host"
            )
        tokens, bind = TokenTable(insecure=True), "127.0.0.1"
        typer.echo("warning: --insecure-local: no authentication, loopback only", err=True)
    elif not tokens.tokens:
        typer.echo(
            "timetravel: error: no API tokens: set TIMETRAVEL_API_TOKENS='reader:...,admin:...' "
            "or api.tokens_file, or pass --insecure-local for a loopback-only dev server",
            err=True,
        )
        raise typer.Exit(code=2)
    app_ = create_app(config, tokens=tokens)
    uvicorn.run(
        app_, host=bind, port=port if port is not None else config.api.port, log_level="info"
    )


def main() -> None:
    """Console entry point: user errors print one clear line, not a stack trace."""
    try:
        app()
    except TimeTravelError as exc:
        typer.echo(f"timetravel: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
