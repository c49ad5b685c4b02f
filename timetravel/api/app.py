"""The app factory: one router per resource (and the console's pages under /ui), problem-details
errors, jobs resumed at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from timetravel import __version__
from timetravel.api.auth import TokenTable, load_tokens
from timetravel.api.deps import Services
from timetravel.api.guards import RequestGuard
from timetravel.api.jobs import JobRunner, JobStore
from timetravel.api.metrics import ApiMetrics
from timetravel.api.problems import install_handlers
from timetravel.api.routes import contexts, features, health, runs, status, training_sets
from timetravel.config import Config
from timetravel.console import routes as console
from timetravel.console.sessions import SessionStore
from timetravel.facade import TimeTravel
from timetravel.schedule.health import assess

__all__ = ["create_app"]


def create_app(
    config: Config, *, tokens: TokenTable | None = None, tt: TimeTravel | None = None
) -> FastAPI:
    """The API over ``config``'s warehouse. ``tokens`` default to the environment / secrets
    file; ``tt`` lets a caller share an existing TimeTravel (and its SparkSession)."""
    timetravel = tt or TimeTravel(config)
    table = tokens if tokens is not None else load_tokens(config.api.tokens_file)
    store = JobStore(config.api.state_dir)
    output_root = config.api.output_root or f"{config.warehouse.root}/training_sets"
    runner = JobRunner(timetravel, store, output_root)

    # Lookups are short and CPU-bound: a few threads serve them first come, first served.
    # Dozens of threads contending for the GIL would make every one of them slow.
    lookups = ThreadPoolExecutor(
        max_workers=config.api.lookup_threads, thread_name_prefix="tt-lookup"
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner.resume()
        yield
        runner.shutdown()
        lookups.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="timetravel as-of query API",
        version=__version__,
        lifespan=lifespan,
        description="Feature registry, snapshot runs, point-in-time lookups and "
        "reproducible training sets.",
    )
    metrics = ApiMetrics(lambda now: assess(config.schedule, timetravel.runs(), now))
    app.state.services = Services(timetravel, table, runner, store, lookups, metrics)
    app.state.console_sessions = SessionStore()
    app.add_middleware(RequestGuard, tokens=table, max_body_bytes=config.api.max_body_bytes)
    install_handlers(app)
    for module in (health, features, runs, contexts, training_sets, status, console):
        app.include_router(module.router)
    return app
