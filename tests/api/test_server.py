"""The API as users run it: `timetravel serve` under uvicorn over HTTP; and a property-based
run of schemathesis against the app's own OpenAPI schema."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.conftest import ADMIN, READER, TOKENS, auth, with_api
from tests.utils.servers import wait_until_up
from timetravel import TimeTravel
from timetravel.api import create_app
from timetravel.config import Config
from timetravel.demo.fleet import free_port

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]


def _conf_file(config: Config, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    return path


def _serve(conf: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "timetravel.cli", "--conf", str(conf), "serve", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def server(api_config: Config, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TIMETRAVEL_API_TOKENS": f"reader:{READER},admin:{ADMIN}"}
    process = _serve(_conf_file(api_config, tmp_path / "conf.yaml"), "--port", str(port), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
        assert READER not in output and ADMIN not in output  # tokens are never logged


def test_real_uvicorn_process_over_http(server: str) -> None:
    lookup = httpx.get(
        f"{server}/v1/contexts/1/features",
        headers=auth(),
        params={"as_of": "2026-06-10T12:00:00Z", "features": "ratings_count"},
    )
    assert lookup.status_code == 200 and lookup.json()["features"] == {"ratings_count": 4}
    assert httpx.get(f"{server}/v1/features").status_code == 401
    assert httpx.get(f"{server}/docs").status_code == 200
    assert "/v1/training-sets" in httpx.get(f"{server}/openapi.json").json()["paths"]
    # A token in the URL is refused, and the access log (checked at teardown) never sees it.
    leaked = httpx.get(f"{server}/v1/features", params={"access_token": ADMIN})
    assert leaked.status_code == 400 and ADMIN not in leaked.text


def test_serve_refuses_to_start_without_tokens(api_config: Config, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TIMETRAVEL_API_TOKENS"}
    conf = _conf_file(api_config, tmp_path / "conf.yaml")
    refused = _serve(conf, "--port", str(free_port()), env=env)
    output = refused.communicate(timeout=60)[0].decode()
    assert refused.returncode == 2 and "no API tokens" in output
    public = _serve(conf, "--insecure-local", "--host", "0.0.0.0", env=env)
    output = public.communicate(timeout=60)[0].decode()
    assert public.returncode == 2 and "127.0.0.1 only" in output


def test_no_5xx_and_responses_match_the_schema(api_config: Config, spark) -> None:  # type: ignore[no-untyped-def]
    """Every operation, bounded examples each. (Driven by hand with ``as_strategy``: the
    schemathesis pytest fixture loader does not work with pytest 9.)"""
    from hypothesis import given

    app = create_app(api_config, tokens=TOKENS, tt=TimeTravel(api_config, spark=spark))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15  # /v1/status and /v1/runs/{id}/quality; /metrics is not
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(
                headers=auth(ADMIN),
                checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
            )

        check()


INSTANTS = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.sampled_from(
            [
                UTC,
                timezone(timedelta(hours=1)),
                timezone(timedelta(hours=-5)),
                timezone(timedelta(hours=14)),
            ]
        ),
    ).map(lambda t: t.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00Z",
            "1900-01-01T00:00:00Z",
            "2199-12-31T23:59:59Z",
        ]
    ),
    st.text(max_size=80),
)
DURATIONS = st.one_of(
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.integers(0, 10**22),
        st.sampled_from(["d", "h", "m", "s", "days"]),
    ),
    st.builds(lambda n: f"P{n}D", st.integers(0, 10**22)),
    st.builds(
        lambda s, n: f"{s}={n}d",
        st.sampled_from(["ratings", "member-profile", "x", ""]),
        st.integers(0, 10**22),
    ),
    st.text(max_size=40),
)
KEYS = st.one_of(st.integers(-(2**65), 2**65), st.sampled_from([2**63 - 1, 2**63, 2**64, -1]))
IDS = st.one_of(st.text(min_size=1, max_size=400), st.just("a" * 300))


def test_edge_values_never_give_a_5xx(api_config: Config, spark) -> None:  # type: ignore[no-untyped-def]
    """What schemathesis' generic strings rarely reach: calendar edges with offsets, huge
    durations, keys past 2^63, long ids. Every answer must be a 2xx or a 4xx."""
    from fastapi.testclient import TestClient
    from hypothesis import given

    config = with_api(api_config, state_dir=api_config.api.state_dir + "-edges", max_queued_jobs=2)
    app = create_app(config, tokens=TOKENS, tt=TimeTravel(config, spark=spark))
    with TestClient(app) as client:

        def ok(response: httpx.Response) -> None:
            assert response.status_code < 500, response.text

        @given(as_of=INSTANTS, staleness=st.one_of(st.none(), DURATIONS), key=KEYS)
        @settings(
            max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def lookups(as_of: str, staleness: str | None, key: int) -> None:
            params = {"as_of": as_of, "features": "ratings_count"}
            if staleness is not None:
                params["max_staleness"] = staleness
            ok(client.get(f"/v1/contexts/{key}/features", params=params, headers=auth()))

        @given(
            label_time=INSTANTS,
            staleness=st.one_of(st.none(), DURATIONS),
            key=KEYS,
            features=st.one_of(st.none(), st.lists(st.sampled_from(["plan", "x"]), max_size=2)),
        )
        @settings(
            max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def submissions(
            label_time: str, staleness: str | None, key: int, features: list[str] | None
        ) -> None:
            body: dict[str, object] = {
                "labels": [{"member_id": key, "label_time": label_time}],
                "features": features,
                "max_staleness": staleness,
            }
            ok(client.post("/v1/training-sets", json=body, headers=auth(ADMIN)))

        @given(job_id=IDS)
        @settings(
            max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def jobs(job_id: str) -> None:
            for method, suffix in (
                ("GET", ""),
                ("GET", "/rows"),
                ("DELETE", ""),
                ("POST", "/rebuild"),
            ):
                ok(
                    client.request(
                        method,
                        f"/v1/training-sets/{quote(job_id, safe='')}{suffix}",
                        headers=auth(ADMIN),
                    )
                )

        lookups()
        submissions()
        jobs()
