"""The ``timetravel`` command line: a thin shell over the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from timetravel.config import Config, load_config
from timetravel.errors import TimeTravelError

app = typer.Typer(help="Point-in-time snapshots of online facts and leakage-free training sets.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
demo_app = typer.Typer(help="The demo streaming service and guided tours.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")

ConfOption = Annotated[Optional[Path], typer.Option(
    "--conf", help="YAML profile (default: $TIMETRAVEL_CONF, else conf/local.yaml).")]


def _config(ctx: typer.Context) -> Config:
    return ctx.obj["config"]


@app.callback()
def _main(ctx: typer.Context, conf: ConfOption = None) -> None:
    ctx.obj = {"config": load_config(conf)}


@app.command("setup-jars")
def setup_jars(ctx: typer.Context) -> None:
    """Fetch the Delta and S3A jars from Maven Central into the project cache (once)."""
    from timetravel.jars import fetch_jars

    jars = fetch_jars(_config(ctx).spark.jars_dir)
    typer.echo(f"{len(jars)} jars ready in {Path(_config(ctx).spark.jars_dir).resolve()}")


@app.command("jars")
def jars(ctx: typer.Context,
         submit_args: Annotated[bool, typer.Option(
             "--submit-args", help="Print '--jars a,b,...' for spark-submit.")] = False) -> None:
    """List the cached jars (fetching them first if needed)."""
    from timetravel.jars import fetch_jars, spark_submit_args

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
    """Run the demo end to end on the configured warehouse."""
    from timetravel.demo.delta_tour import run_delta_tour
    from timetravel.spark import get_spark
    from timetravel.store import DeltaStore

    config = _config(ctx)
    typer.echo(f"timetravel demo: profile {config.profile!r}, warehouse {config.warehouse.root}")
    spark = get_spark(config)
    spark.sparkContext.setLogLevel("ERROR")
    run_delta_tour(DeltaStore(spark, config), say=typer.echo)


def main() -> None:
    """Console entry point: user errors print one clear line, not a stack trace."""
    try:
        app()
    except TimeTravelError as exc:
        typer.echo(f"timetravel: error: {exc}", err=True)
        sys.exit(2)
