"""Console sign-in and sessions without a browser or Spark: the app over an empty warehouse,
driven by the ASGI test client (the browser tests cover the pages over real data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, READER, TOKENS
from timetravel.api import create_app
from timetravel.api.auth import TokenTable
from timetravel.config import Config, load_config
from timetravel.console.sessions import COOKIE, SessionStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    base = load_config(ROOT / "conf" / "local.yaml")
    return base.model_copy(
        update={
            "warehouse": base.warehouse.model_copy(update={"root": str(tmp_path / "wh")}),
            "api": base.api.model_copy(update={"state_dir": str(tmp_path / "state")}),
        }
    )


@pytest.fixture
def client(config: Config) -> Iterator[TestClient]:
    with TestClient(create_app(config, tokens=TOKENS), base_url="https://localhost") as c:
        yield c


def test_pages_need_a_session_and_a_bad_token_gets_none(client: TestClient) -> None:
    for path in ("/ui", "/ui/runs", "/ui/features", "/ui/training-sets", "/ui/lookup"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] in ("/ui/sign-in", "/ui/runs"), path
    refused = client.post("/ui/sign-in", data={"token": "x" * 40})
    assert refused.status_code == 401 and "not valid" in refused.text
    assert COOKIE not in refused.cookies
    empty = client.post("/ui/sign-in", data={})
    assert empty.status_code == 401
    # A bearer token does not open the console, and the cookie does not open the API.
    assert client.get("/ui/runs", headers={"Authorization": f"Bearer {READER}"}).url.path == (
        "/ui/sign-in"
    )


def test_sign_in_sets_a_strict_cookie_holding_no_token(client: TestClient) -> None:
    signed = client.post("/ui/sign-in", data={"token": READER}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/runs"
    cookie = signed.headers["set-cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/ui"):
        assert attribute in cookie, cookie
    assert READER not in cookie
    page = client.get("/ui/runs")
    assert page.status_code == 200 and "0 of 0 runs" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/v1/runs").status_code == 401  # the API still wants its bearer token


def test_sign_out_needs_the_forms_csrf_token(client: TestClient) -> None:
    client.post("/ui/sign-in", data={"token": ADMIN})
    page = client.get("/ui/runs").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    forged = client.post("/ui/sign-out", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert client.get("/ui/runs").status_code == 200  # a forged sign-out closes nothing
    out = client.post("/ui/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/ui/runs", follow_redirects=False).status_code == 303


def test_edge_inputs_get_a_page_not_a_500(client: TestClient) -> None:
    client.post("/ui/sign-in", data={"token": READER})
    cases = {
        "/ui/runs/" + "x" * 5000: 404,
        "/ui/runs/%00": 404,
        "/ui/runs?since=not-a-date&until=9999-99-99": 200,
        "/ui/training-sets/" + "y" * 300: 404,
        "/ui/training-sets/nope/download?format=exe": 404,
        "/ui/lookup?key=18446744073709551616&as_of=2026-06-01T00:00:00Z": 422,
        "/ui/lookup?key=1&as_of=0001-01-01T00:00:00%2B14:00": 422,
        "/ui/lookup?key=1&as_of=9999-12-31T23:59:59-05:00": 422,
        "/ui/features?q=" + "z" * 5000: 200,
    }
    for path, status in cases.items():
        response = client.get(path)
        assert response.status_code == status, (path[:80], response.status_code)
        assert "Traceback" not in response.text
    huge = client.post("/ui/sign-in", content=b"token=" + b"a" * 100_000)
    assert huge.status_code == 401  # a form over 16 KiB is not read as a sign-in
    many = "&".join(f"f{i}=1" for i in range(25)) + f"&token={READER}"
    crowded = client.post("/ui/sign-in", content=many.encode())
    assert crowded.status_code == 401  # more than 20 fields: refused, not a 500


def test_without_tokens_the_local_server_needs_no_sign_in(config: Config) -> None:
    app = create_app(config, tokens=TokenTable(insecure=True))
    with TestClient(app, base_url="https://localhost") as local:
        page = local.get("/ui/runs", follow_redirects=False)
        assert page.status_code == 200 and "signed in as admin" in page.text


def test_sessions_expire_and_are_bounded() -> None:
    store = SessionStore(ttl_s=-1)
    sid, _ = store.open("reader")
    assert store.get(sid) is None  # already expired
    bounded = SessionStore(max_sessions=2)
    first, _ = bounded.open("reader")
    bounded.open("reader")
    bounded.open("admin")
    assert bounded.get(first) is None  # the oldest went
    assert bounded.get("z" * 65) is None and bounded.get(None) is None
    sid, session = bounded.open("admin")
    assert SessionStore.csrf_ok(session, session.csrf)
    assert not SessionStore.csrf_ok(session, None) and not SessionStore.csrf_ok(session, "x")


def test_a_run_whose_data_is_gone_still_gets_its_page(client: TestClient, config: Config) -> None:
    from timetravel.warehouse.runs import RunsIndex

    # The snapshot points at a snapshot_errors version that is not there (vacuumed, moved).
    RunsIndex(config).record(
        "r-gone",
        "2026-06-01T06:00:00Z",
        "snapshot",
        "ok",
        details={
            "sources": {
                "ratings": {
                    "requested": 2,
                    "fetched": 2,
                    "failed": 0,
                    "coverage": 1.0,
                    "status": "ok",
                }
            }
        },
        table_versions={"snapshot_errors": 7},
    )
    client.post("/ui/sign-in", data={"token": READER})
    page = client.get("/ui/runs/r-gone")
    assert page.status_code == 200
    assert "could not be read" in page.text and "TableNotFoundError" in page.text
    assert "100.0%" in page.text  # what the runs index holds is still shown
    report = client.get("/ui/runs/r-gone/report")
    assert report.status_code == 404 and "no completed quality stage" in report.text
