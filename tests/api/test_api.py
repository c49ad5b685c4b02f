"""Every endpoint and its errors through TestClient."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, READER, auth, labels_dir
from timetravel.api.jobs import JobRecord, JobStore
from timetravel.config import Config

pytestmark = pytest.mark.spark

T = "2026-06-10T12:00:00Z"


def problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    return body


def wait(client: TestClient, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/training-sets/{job_id}", headers=auth()).json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"]["spark"] == "ok"
    assert ready["checks"]["warehouse"].startswith("ok")


def test_features_registry(client: TestClient) -> None:
    features = client.get("/v1/features", headers=auth()).json()
    by_name = {f["name"]: f for f in features}
    assert len(features) == 25
    assert by_name["ratings_count"]["available"] is True
    assert by_name["plays_7d"]["available"] is False
    assert "no fact table" in by_name["plays_7d"]["unavailable_reason"]
    assert [
        f["name"]
        for f in client.get("/v1/features", params={"source": "ratings"}, headers=auth()).json()
    ] == ["ratings_count", "thumbs_up_share"]
    assert [
        f["name"]
        for f in client.get(
            "/v1/features", params={"owner": "membership", "tag": "account"}, headers=auth()
        ).json()
    ] == ["is_churned", "plan", "tenure_days"]
    one = client.get("/v1/features/plan", headers=auth()).json()
    assert one["versions"] == [1] and one["reads"] == {"member-profile": ["plan"]}
    problem(client.get("/v1/features/nope", headers=auth()), 404, "known: ", "plan")


def test_runs(client: TestClient) -> None:
    runs = client.get("/v1/runs", headers=auth()).json()
    assert [r["run_id"] for r in runs] == ["r2", "r1"]
    assert runs[0]["status"] == {"snapshot": "partial"}
    assert runs[0]["coverage"] == {"ratings": 0.5, "member-profile": 1.0}
    one = client.get("/v1/runs/r1", headers=auth()).json()
    assert one["table_versions"] == {"facts/ratings": 1}
    assert one["stages"]["snapshot"]["status"] == "ok"
    problem(client.get("/v1/runs/r9", headers=auth()), 404, "no run 'r9'")
    problem(client.get("/v1/runs", params={"limit": 0}, headers=auth()), 422, "limit")


def test_point_lookup(client: TestClient) -> None:
    body = client.get(
        "/v1/contexts/1/features",
        headers=auth(),
        params={"as_of": T, "features": "ratings_count,thumbs_up_share,tenure_days"},
    ).json()
    assert body["features"] == {"ratings_count": 4, "thumbs_up_share": 0.75, "tenure_days": 9}
    assert body["sources"]["ratings"] == {
        "table": "facts/ratings",
        "version": 2,
        "snapshot_time": "2026-06-08T06:00:00Z",
        "run_id": "r2",
    }
    earlier = client.get(
        "/v1/contexts/1/features",
        headers=auth(),
        params={"as_of": "2026-06-08T05:59:59", "features": "ratings_count"},
    ).json()
    assert earlier["features"] == {"ratings_count": 2}  # naive instant = UTC
    assert earlier["sources"]["ratings"]["run_id"] == "r1"
    stale = client.get(
        "/v1/contexts/2/features",
        headers=auth(),
        params={"as_of": T, "features": "ratings_count", "max_staleness": "7d"},
    ).json()
    assert stale["features"] == {"ratings_count": None}
    assert stale["sources"]["ratings"]["snapshot_time"] is None
    unknown = client.get(
        "/v1/contexts/99/features", headers=auth(), params={"as_of": T, "features": "plan"}
    ).json()
    assert unknown["features"] == {"plan": None}


def test_point_lookup_bad_input(client: TestClient) -> None:
    def get(key: object, **params: str) -> Any:
        return client.get(f"/v1/contexts/{key}/features", headers=auth(), params=params)

    problem(get(1, as_of="soon"), 422, "not an ISO-8601 instant: 'soon'")
    problem(get(1), 422, "as_of")
    problem(get(-1, as_of=T), 422, "key")
    problem(get("abc", as_of=T), 422, "key")
    problem(get(1, as_of=T, features="plan,nope"), 422, "unknown feature(s) ['nope']; known:")
    problem(get(1, as_of=T, features="plays_7d"), 422, "no fact table")
    problem(get(1, as_of=T, max_staleness="a while"), 422, "not a duration")


def test_training_set_lifecycle(client: TestClient) -> None:
    labels = [
        {"member_id": 1, "label_time": T, "y": 1},
        {"member_id": 2, "label_time": T, "y": 0},
        {"member_id": 1, "label_time": "2026-06-01T06:00:00Z", "y": 0},
    ]
    submitted = client.post(
        "/v1/training-sets",
        headers=auth(ADMIN),
        json={"labels": labels, "features": ["ratings_count", "plan"], "max_staleness": "14d"},
    )
    assert submitted.status_code == 202, submitted.text
    job = wait(client, submitted.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["manifest"]["rows"] == 3 and job["manifest"]["engine"] == "duckdb"
    assert job["manifest"]["sources"]["ratings"] == {"table": "facts/ratings", "version": 2}
    page = client.get(
        f"/v1/training-sets/{job['id']}/rows", headers=auth(), params={"offset": 1, "limit": 1}
    ).json()
    assert page["total"] == 3 and len(page["rows"]) == 1
    rows = client.get(f"/v1/training-sets/{job['id']}/rows", headers=auth()).json()["rows"]
    got = sorted((r["member_id"], r["label_time"], r["ratings_count"], r["plan"]) for r in rows)
    assert got == [(1, "2026-06-01T06:00:00Z", 2, None), (1, T, 4, "basic"), (2, T, 2, None)]
    download = client.get(
        f"/v1/training-sets/{job['id']}/rows", headers=auth(), params={"format": "parquet"}
    )
    assert download.headers["content-type"] == "application/vnd.apache.parquet"
    assert pq.read_table(pa.BufferReader(download.content)).num_rows == 3
    csv = client.get(
        f"/v1/training-sets/{job['id']}/rows", headers=auth(), params={"format": "csv"}
    )
    assert csv.text.splitlines()[0].startswith('"member_id","label_time","y"')
    rebuilt = client.post(f"/v1/training-sets/{job['id']}/rebuild", headers=auth(ADMIN))
    assert rebuilt.status_code == 202
    again = wait(client, rebuilt.json()["id"])
    assert again["status"] == "succeeded" and again["rebuild_of"] == job["id"]
    assert again["manifest"]["id"] == job["manifest"]["id"]
    assert (
        client.get(f"/v1/training-sets/{again['id']}/rows", headers=auth()).json()["rows"]
        == client.get(f"/v1/training-sets/{job['id']}/rows", headers=auth()).json()["rows"]
    )
    finished = client.delete(f"/v1/training-sets/{job['id']}", headers=auth(ADMIN)).json()
    assert finished["status"] == "succeeded"  # a finished job is left as it is
    listed = [j["id"] for j in client.get("/v1/training-sets", headers=auth()).json()]
    assert {job["id"], again["id"]} <= set(listed)


def test_training_set_from_a_labels_uri(client: TestClient, api_config: Config) -> None:
    path = labels_dir(api_config) / "labels.csv"
    pd.DataFrame({"member_id": [1], "label_time": [T]}).to_csv(path, index=False)
    submitted = client.post(
        "/v1/training-sets",
        headers=auth(ADMIN),
        json={"labels_uri": str(path), "features": ["ratings_count"], "format": "parquet"},
    )
    job = wait(client, submitted.json()["id"])
    assert job["status"] == "succeeded", job
    rows = client.get(f"/v1/training-sets/{job['id']}/rows", headers=auth()).json()["rows"]
    assert [r["ratings_count"] for r in rows] == [4]


def test_training_set_bad_input(client: TestClient, api_config: Config) -> None:
    post = lambda body: client.post("/v1/training-sets", headers=auth(ADMIN), json=body)  # noqa: E731
    row = {"member_id": 1, "label_time": T}
    problem(post({"labels": [row] * 51}), 422, "51 inline label rows; at most 50")
    problem(post({"labels": [row], "features": ["nope"]}), 422, "unknown feature(s) ['nope']")
    problem(post({"labels": [{"member_id": 1}]}), 422, "lack column(s) ['label_time']")
    problem(
        post({"labels": [{"member_id": 1, "label_time": "later"}]}), 422, "not an ISO-8601 instant"
    )
    problem(post({"labels": [row], "labels_uri": "x"}), 422, "exactly one of labels")
    problem(post({"labels": []}), 422, "labels is empty")
    root = str(labels_dir(api_config))
    problem(post({"labels_uri": f"{root}/../secrets.csv"}), 422, "not under any allowed root")
    problem(post({"labels_uri": "/etc/passwd"}), 422, "must be under one of")
    problem(post({"labels": [row], "max_staleness": "soonish"}), 422, "not a duration")
    problem(post({"labels": [row], "surprise": 1}), 422, "surprise")
    malformed = client.post(
        "/v1/training-sets",
        headers={**auth(ADMIN), "content-type": "application/json"},
        content=b'{"labels": [',
    )
    problem(malformed, 422)
    for path in ("/v1/training-sets/nope", "/v1/training-sets/nope/rows"):
        problem(client.get(path, headers=auth()), 404, "nope")
    problem(client.post("/v1/training-sets/nope/rebuild", headers=auth(ADMIN)), 404)


def test_auth(client: TestClient) -> None:
    problem(client.get("/v1/features"), 401, "bearer token")
    problem(client.get("/v1/features", headers=auth("wrong-token-0123456789")), 401)
    assert client.get("/v1/features", headers=auth(READER)).status_code == 200
    assert client.get("/v1/features", headers=auth(ADMIN)).status_code == 200
    body = {"labels": [{"member_id": 1, "label_time": T}]}
    problem(client.post("/v1/training-sets", headers=auth(READER), json=body), 403, "admin role")
    problem(client.delete("/v1/training-sets/x", headers=auth(READER)), 403)
    assert client.get("/healthz").status_code == 200  # health needs no token


def test_jobs_survive_a_restart(make_client: Callable[..., TestClient], api_config: Config) -> None:
    first = make_client()
    done = first.post(
        "/v1/training-sets",
        headers=auth(ADMIN),
        json={"labels": [{"member_id": 1, "label_time": T}], "features": ["plan"]},
    ).json()
    assert wait(first, done["id"])["status"] == "succeeded"
    # A job left 'running' by a process that died, and one that was only queued.
    store = JobStore(api_config.api.state_dir)
    stranded = []
    for status in ("running", "queued"):
        record = JobRecord(
            f"ts-job-stranded{status}",
            status,
            "2026-06-10T00:00:00+00:00",
            "2026-06-10T00:00:00+00:00",
            {"features": ["ratings_count"]},
        )
        store.labels_path(record.id).write_text(f'[{{"member_id": 1, "label_time": "{T}"}}]')
        store.save(record)
        stranded.append(record.id)
    cancelled = JobRecord(
        "ts-job-cancelme", "queued", "2026-06-10T00:00:00+00:00", "2026-06-10T00:00:00+00:00", {}
    )
    second = make_client()  # "restart": a new app over the same state directory
    assert wait(second, done["id"])["status"] == "succeeded"
    for job_id in stranded:
        job = wait(second, job_id)
        assert job["status"] == "succeeded", job
        assert job["manifest"]["rows"] == 1
    store.save(cancelled)
    assert (
        second.delete(f"/v1/training-sets/{cancelled.id}", headers=auth(ADMIN)).json()["status"]
        == "cancelled"
    )
