"""A small warehouse (ratings + profiles, two runs) and API apps over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.utils.facts import PROFILE, RATINGS, write_facts
from timetravel import TimeTravel
from timetravel.api import create_app
from timetravel.api.auth import TokenTable
from timetravel.config import Config
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

READER = "reader-token-0123456789"
ADMIN = "admin-token-0123456789ab"
TOKENS = TokenTable(((READER.encode(), "reader"), (ADMIN.encode(), "admin")))


@pytest.fixture(scope="module")
def api_config(spark, test_config: Config, tmp_path_factory: pytest.TempPathFactory) -> Config:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("api")
    labels_root = root / "labels"
    labels_root.mkdir()
    config = test_config.model_copy(
        update={
            "warehouse": test_config.warehouse.model_copy(update={"root": str(root / "wh")}),
            "api": test_config.api.model_copy(
                update={
                    "state_dir": str(root / "state"),
                    "labels_roots": [str(labels_root)],
                    "max_inline_labels": 50,
                    "workers": 1,
                }
            ),
            "query": test_config.query.model_copy(update={"engine": "duckdb"}),
        }
    )
    store = DeltaStore(spark, config)
    runs = RunsIndex(config)
    write_facts(
        store,
        "ratings",
        RATINGS,
        [(1, "2026-06-01T06:00:00", 1, 1), (2, "2026-06-01T06:00:00", 0, 2)],
        run_id="r1",
        written_at="2026-06-01T07:00:00Z",
    )
    runs.record(
        "r1",
        "2026-06-01T06:00:00Z",
        "snapshot",
        "ok",
        details={"sources": {"ratings": {"coverage": 1.0, "latency_ms": {"p99": 99.0}}}},
        table_versions={"facts/ratings": 1},
    )
    write_facts(
        store,
        "ratings",
        RATINGS,
        [(1, "2026-06-08T06:00:00", 3, 1)],
        run_id="r2",
        written_at="2026-06-08T07:00:00Z",
    )
    write_facts(
        store,
        "member-profile",
        PROFILE,
        [(1, "2026-06-08T06:00:00", "basic", "2026-05-31T13:00:00", "active")],
        run_id="r2",
        written_at="2026-06-08T07:00:00Z",
    )
    runs.record(
        "r2",
        "2026-06-08T06:00:00Z",
        "snapshot",
        "partial",
        details={
            "sources": {
                "ratings": {"coverage": 0.5, "latency_ms": {"p50": 4.0, "p95": 9.0, "p99": 12.5}},
                "member-profile": {"coverage": 1.0},
            }
        },
        table_versions={"facts/ratings": 2, "facts/member_profile": 1},
    )
    return config


@pytest.fixture
def make_client(api_config: Config, spark) -> Iterator[Callable[..., TestClient]]:  # type: ignore[no-untyped-def]
    clients: list[TestClient] = []

    def make(config: Config | None = None) -> TestClient:
        app = create_app(
            config or api_config, tokens=TOKENS, tt=TimeTravel(config or api_config, spark=spark)
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def auth(token: str = READER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def labels_dir(config: Config) -> Path:
    return Path(config.api.labels_roots[0])


def with_api(config: Config, **changes: object) -> Config:
    """``config`` with some ``api`` settings changed."""
    return config.model_copy(update={"api": config.api.model_copy(update=changes)})
