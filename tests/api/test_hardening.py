"""The API tried as an attacker and a careless user would: confinement of labels_uri, no 5xx
for edge inputs, bounded work, and job state that a cancel or a crash cannot corrupt."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, auth, labels_dir, with_api
from tests.api.test_api import problem, wait
from timetravel.api.jobs import JobRecord, JobStore
from timetravel.config import Config

pytestmark = pytest.mark.spark

T = "2026-06-10T12:00:00Z"
SECRET = "member_id,label_time\n1,2026-06-10T12:00:00Z\n"  # "outside": must never be read


@pytest.fixture(scope="module")
def outside(api_config: Config) -> Path:
    """Label files of every format just outside the allowed root, and links to them inside."""
    root = labels_dir(api_config)
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / "secret.csv").write_text(SECRET)
    (root / "inside.csv").write_text(SECRET)
    frame = pd.DataFrame({"member_id": [1], "label_time": [T]})
    (elsewhere / "pq").mkdir(exist_ok=True)
    frame.to_parquet(elsewhere / "pq" / "part-0.parquet")
    from deltalake import write_deltalake

    write_deltalake(str(elsewhere / "delta"), pa.Table.from_pandas(frame), mode="overwrite")
    for name, target in (("link.csv", "secret.csv"), ("linkdir", "pq"), ("linkdelta", "delta")):
        if not (root / name).is_symlink():
            os.symlink(elsewhere / target, root / name)
    inner = root / "mixed"  # a real folder holding a link out
    inner.mkdir(exist_ok=True)
    frame.to_parquet(inner / "part-0.parquet")
    if not (inner / "part-1.parquet").is_symlink():
        os.symlink(elsewhere / "pq" / "part-0.parquet", inner / "part-1.parquet")
    return elsewhere


def post(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/v1/training-sets", headers=auth(ADMIN), json=body)


@pytest.mark.parametrize("root_form", ["path", "file-uri"])
@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_labels_uri_cannot_escape_its_root(
    make_client: Callable[..., TestClient],
    api_config: Config,
    outside: Path,
    engine: str,
    root_form: str,
) -> None:
    root = str(labels_dir(api_config))
    allowed = root if root_form == "path" else f"file://{root}"
    client = make_client(with_api(api_config, labels_roots=[allowed]))
    # Under the root: accepted, and read (on the embedded engine: the refusals below are
    # decided at submit, whatever the engine; a job left running would be resumed by the
    # next test's server and hold its only worker).
    inside = post(
        client,
        {"labels_uri": f"file://{root}/inside%2Ecsv", "features": ["ratings_count"]},
    )
    assert inside.status_code == 202, inside.text
    assert wait(client, inside.json()["id"])["status"] == "succeeded"
    escapes = [
        f"file://{root}/%2e%2e/elsewhere/secret.csv",
        f"file://{root}/%2E%2E/elsewhere/secret.csv",
        f"file://{root}/.%2e/elsewhere/secret.csv",
        f"file://{root}/%2e%2e%2felsewhere/secret.csv",
        f"{root}/../elsewhere/secret.csv",
        f"{root}-other/secret.csv",  # a prefix, not a parent
        f"{root}/link.csv",
        f"{root}/linkdir",
        f"file://{root}/linkdir",
        f"{root}/linkdelta",
    ]
    for uri in escapes:
        body = problem(post(client, {"labels_uri": uri, "engine": engine}), 422)
        assert "allowed root" in body["detail"], (uri, body)
    for uri in (
        f"{root}/{{x,../elsewhere}}/secret.csv",
        f"{root}/*.csv",
        f"{root}/[ab].csv",
        f"file://{root}/%7Bx,..%2Felsewhere%7D/secret.csv",
    ):
        problem(post(client, {"labels_uri": uri, "engine": engine}), 422, "glob")
    problem(
        post(client, {"labels_uri": f"file://{root}/%252e%252e/elsewhere/secret.csv"}),
        422,
        "'%' is not allowed",
    )
    problem(
        post(client, {"labels_uri": f"{root}/mixed", "engine": engine}), 422, "link leading outside"
    )
    problem(post(client, {"labels_uri": "http://example.org/x.csv"}), 422, "unsupported scheme")


def test_a_delta_label_table_naming_files_outside_is_refused(
    client: TestClient, api_config: Config, outside: Path
) -> None:
    from deltalake import write_deltalake

    root = labels_dir(api_config)
    table = root / "delta-labels"
    write_deltalake(str(table), pa.table({"member_id": [1], "label_time": [T]}), mode="overwrite")
    body = post(client, {"labels_uri": str(table), "features": ["ratings_count"]})
    assert body.status_code == 202, body.text  # a clean table is fine
    assert wait(client, body.json()["id"])["status"] == "succeeded"
    # Rewrite its log so the data file it adds is outside the root (absolute path).
    log = sorted((table / "_delta_log").glob("*.json"))[-1]
    text = log.read_text()
    part = next(p.name for p in table.glob("*.parquet"))
    os.replace(table / part, outside / part)
    log.write_text(text.replace(f'"path":"{part}"', f'"path":"file://{outside / part}"'))
    problem(post(client, {"labels_uri": str(table)}), 422, "outside the allowed roots")
    log.write_text(text.replace(f'"path":"{part}"', f'"path":"../../elsewhere/{part}"'))
    problem(post(client, {"labels_uri": str(table)}), 422, "outside the allowed roots")


def test_a_file_that_fails_to_parse_is_not_echoed(client: TestClient, api_config: Config) -> None:
    root = labels_dir(api_config)
    (root / "notlabels.csv").write_text(
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    )
    (root / "ragged.csv").write_text("member_id,label_time\n1,2,SECRET-VALUE\n")
    (root / "badtime.csv").write_text("member_id,label_time\n1,SECRET-VALUE\n")
    # Each Spark job starts a worker JVM: the Spark engine goes through the API for one file
    # here; tests/training checks all three on it in process (the message the worker returns).
    cases = [(name, "duckdb") for name in ("notlabels.csv", "ragged.csv", "badtime.csv")]
    for name, engine in [*cases, ("badtime.csv", "spark")]:
        submitted = post(
            client,
            {"labels_uri": str(root / name), "engine": engine, "features": ["ratings_count"]},
        )
        assert submitted.status_code == 202, submitted.text
        job = wait(client, submitted.json()["id"])
        assert job["status"] == "failed", job
        for leaked in ("root:x", "daemon", "/bin/bash", "SECRET-VALUE"):
            assert leaked not in job["error"], (name, engine, job["error"])


def test_edge_inputs_are_4xx_never_5xx(client: TestClient) -> None:
    def lookup(**params: str) -> Any:
        return client.get("/v1/contexts/1/features", headers=auth(), params=params)

    for instant in (
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ):
        problem(lookup(as_of=instant), 422, "outside 1900-01-01")
        problem(
            post(client, {"labels": [{"member_id": 1, "label_time": instant}]}), 422, "1900-01-01"
        )
    for staleness in (
        "99999999999d",
        "P99999999999D",
        "99999999999999999999s",
        "ratings=99999999999d",
    ):
        problem(lookup(as_of=T, max_staleness=staleness), 422, "maximum of 36500 days")
        problem(
            post(
                client, {"labels": [{"member_id": 1, "label_time": T}], "max_staleness": staleness}
            ),
            422,
            "maximum of 36500 days",
        )
    problem(lookup(as_of="0001-01-01T00:00:00Z", max_staleness="1d"), 422, "outside")
    problem(
        client.get(f"/v1/contexts/{2**63}/features", headers=auth(), params={"as_of": T}),
        422,
        "key",
    )
    for key in (2**63, 2**64, -(2**63) - 1):
        problem(
            post(client, {"labels": [{"member_id": key, "label_time": T}]}), 422, "64-bit range"
        )
    long_id = "a" * 300
    for method, path in (
        ("GET", f"/v1/training-sets/{long_id}"),
        ("GET", f"/v1/training-sets/{long_id}/rows"),
        ("DELETE", f"/v1/training-sets/{long_id}"),
        ("POST", f"/v1/training-sets/{long_id}/rebuild"),
    ):
        problem(client.request(method, path, headers=auth(ADMIN)), 422, "job_id")
    problem(
        post(client, {"labels": [{"member_id": 1, "label_time": T}], "features": []}),
        422,
        "features is empty",
    )
    problem(
        post(
            client,
            {
                "labels": [{"member_id": 1, "label_time": T, "ratings_count": 3}],
                "features": ["ratings_count"],
            },
        ),
        422,
        "collide with output columns",
    )
    problem(
        post(client, {"labels": [{"member_id": 1, "label_time": T}], "label_time": "x" * 300}),
        422,
        "label_time",
    )


def test_lookups_take_per_source_staleness_in_api_terms(client: TestClient) -> None:
    params = {
        "as_of": T,
        "features": "ratings_count,plan",
        "max_staleness": "ratings=1d,member-profile=30d",
    }
    body = client.get("/v1/contexts/1/features", headers=auth(), params=params).json()
    assert body["features"] == {"ratings_count": None, "plan": "basic"}  # ratings: 2d old
    wider = {**params, "max_staleness": "ratings=3d,member-profile=30d"}
    assert client.get("/v1/contexts/1/features", headers=auth(), params=wider).json()[
        "features"
    ] == {"ratings_count": 4, "plan": "basic"}
    bad = problem(
        client.get(
            "/v1/contexts/1/features",
            headers=auth(),
            params={**params, "max_staleness": "ratings=soon"},
        ),
        422,
    )
    assert bad["detail"].startswith("max_staleness 'ratings=soon'")
    assert "--" not in bad["detail"]  # API words, not CLI flags
    problem(
        client.get(
            "/v1/contexts/1/features",
            headers=auth(),
            params={**params, "max_staleness": "ratings=1d,ratings=2d"},
        ),
        422,
        "once",
    )


def test_bodies_are_bounded_and_checked_after_authentication(
    make_client: Callable[..., TestClient], api_config: Config
) -> None:
    small = with_api(api_config, max_body_bytes=2048)
    client = make_client(small)
    big = b'{"labels": [' + b'{"member_id": 1, "label_time": "2026-06-10T12:00:00Z"},' * 200
    anonymous = client.post(
        "/v1/training-sets", content=big, headers={"content-type": "application/json"}
    )
    problem(anonymous, 401, "bearer token")  # refused before reading it
    declared = client.post(
        "/v1/training-sets",
        content=big,
        headers={**auth(ADMIN), "content-type": "application/json"},
    )
    problem(declared, 413, "over the limit of 2048 bytes")

    def chunks() -> Any:  # no Content-Length: streamed
        for _ in range(10):
            yield big[:1000]

    streamed = client.post(
        "/v1/training-sets",
        content=chunks(),
        headers={**auth(ADMIN), "content-type": "application/json"},
    )
    problem(streamed, 413, "over the limit")
    fine = client.post(
        "/v1/training-sets",
        headers=auth(ADMIN),
        json={"labels": [{"member_id": 1, "label_time": T}], "features": ["plan"]},
    )
    assert fine.status_code == 202
    assert wait(client, fine.json()["id"])["status"] == "succeeded"


def test_a_token_in_the_query_string_is_refused(client: TestClient) -> None:
    for name in ("token", "access_token", "api_key"):
        body = problem(client.get("/v1/features", params={name: ADMIN}), 400, "query string")
        assert ADMIN not in body["detail"]
    problem(client.get("/healthz", params={"token": ADMIN}), 400)


def test_the_queue_is_bounded(make_client: Callable[..., TestClient], api_config: Config) -> None:
    tight = with_api(
        api_config, workers=1, max_queued_jobs=1, state_dir=api_config.api.state_dir + "-queue"
    )
    client = make_client(tight)
    body = {"labels": [{"member_id": 1, "label_time": T}], "features": ["plan"]}
    answers = [post(client, body) for _ in range(4)]
    statuses = [a.status_code for a in answers]
    assert statuses[:2] == [202, 202] and 429 in statuses[2:], statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["retry-after"] == "30"
    problem(refused, 429, "retry later")
    for answer in answers:
        if answer.status_code == 202:
            assert wait(client, answer.json()["id"])["status"] == "succeeded"
    assert post(client, body).status_code == 202  # room again


def test_a_job_over_its_memory_limit_is_stopped_and_the_server_lives(
    make_client: Callable[..., TestClient], api_config: Config
) -> None:
    lean = with_api(
        api_config,
        job_memory_mb=256,
        max_inline_labels=100_000,
        max_body_bytes=2**27,
        state_dir=api_config.api.state_dir + "-lean",
    )
    client = make_client(lean)
    labels = [{"member_id": i % 3, "label_time": T, "pad": "x" * 1000} for i in range(60_000)]
    big = client.post(
        "/v1/training-sets", headers=auth(ADMIN), json={"labels": labels, "features": ["plan"]}
    )
    assert big.status_code == 202, big.text
    job = wait(client, big.json()["id"])
    assert job["status"] == "failed" and "api.job_memory_mb = 256 MB" in job["error"], job
    assert client.get("/healthz").status_code == 200


def test_a_cancel_is_never_overwritten_and_not_resumed(api_config: Config) -> None:
    store = JobStore(api_config.api.state_dir + "-cancel")
    record = JobRecord("ts-job-race", "queued", T, T, {})
    store.save(record)

    def cancel(r: JobRecord) -> None:
        r.status = "cancelled"

    assert store.transition("ts-job-race", ("queued", "running"), cancel) is not None

    def start(r: JobRecord) -> None:  # a worker that read "queued" earlier
        r.status = "running"

    assert store.transition("ts-job-race", ("queued",), start) is None
    assert store.get("ts-job-race").status == "cancelled"  # type: ignore[union-attr]


def test_resume_gives_up_after_the_attempt_cap(
    make_client: Callable[..., TestClient], api_config: Config
) -> None:
    config = with_api(api_config, max_job_attempts=2, state_dir=api_config.api.state_dir + "-cap")
    store = JobStore(config.api.state_dir)
    for job_id, attempts in (("ts-job-crashy", 2), ("ts-job-cancelled", 0)):
        status = "running" if attempts else "cancelled"
        record = JobRecord(job_id, status, T, T, {"features": ["plan"]}, attempts=attempts)
        store.labels_path(job_id).write_text(f'[{{"member_id": 1, "label_time": "{T}"}}]')
        store.save(record)
    client = make_client(config)
    deadline = time.monotonic() + 10
    while store.get("ts-job-crashy").status != "failed":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    job = client.get("/v1/training-sets/ts-job-crashy", headers=auth()).json()
    assert "stopped after 2 attempts" in job["error"]
    assert (
        client.get("/v1/training-sets/ts-job-cancelled", headers=auth()).json()["status"]
        == "cancelled"
    )
