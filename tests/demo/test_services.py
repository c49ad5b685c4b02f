"""The demo fleet over real HTTP: answers equal the ground truth, clock control, every fault."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from timetravel.demo.faults import FaultSettings
from timetravel.demo.fleet import Fleet, FleetError
from timetravel.demo.world import SERVICES, World
from timetravel.times import to_utc

T1 = to_utc("2026-06-01T00:00:00Z")
WORLD = {"seed": 7, "members": 500}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet.up(
        tmp_path_factory.mktemp("fleet"), world=WORLD, clock_at=T1.isoformat()
    ) as running:
        yield running


@pytest.fixture(scope="module")
def world() -> World:
    return World(**WORLD)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


@pytest.fixture
def clean_faults(fleet: Fleet) -> Iterator[Fleet]:
    yield fleet
    fleet.clock.set(T1)
    for service in fleet.urls:
        fleet.set_faults(service, FaultSettings())


@pytest.mark.parametrize("service", SERVICES)
def test_single_answers_are_the_ground_truth(
    fleet: Fleet, world: World, client: httpx.Client, service: str
) -> None:
    for member in (0, 1, 42, 499):
        response = client.get(f"{fleet.urls[service]}/v1/members/{member}")
        truth = world.answer(service, [member], T1)[0]
        if truth is None:
            assert response.status_code == 404
        else:
            assert response.status_code == 200
            assert response.json() == truth
            assert response.json()["as_of"] == T1.isoformat()


@pytest.mark.parametrize("service", SERVICES)
def test_batch_equals_singles(fleet: Fleet, client: httpx.Client, service: str) -> None:
    ids = list(range(0, 500, 7)) + [500, 10_000]
    batch = client.post(f"{fleet.urls[service]}/v1/members/batch", json={"member_ids": ids})
    assert batch.status_code == 200
    body = batch.json()
    assert body["as_of"] == T1.isoformat() and body["service"] == service
    singles = {m: client.get(f"{fleet.urls[service]}/v1/members/{m}") for m in ids}
    assert {r["member_id"]: r for r in body["results"]} == {
        m: r.json() for m, r in singles.items() if r.status_code == 200
    }
    assert sorted(body["missing"]) == sorted(m for m, r in singles.items() if r.status_code == 404)
    assert {500, 10_000} <= set(body["missing"])


def test_batch_limit_is_500(fleet: Fleet, client: httpx.Client) -> None:
    url = f"{fleet.urls['ratings']}/v1/members/batch"
    assert client.post(url, json={"member_ids": list(range(500))}).status_code == 200
    too_many = client.post(url, json={"member_ids": list(range(501))})
    assert too_many.status_code == 422
    assert "at most 500" in too_many.text


def test_clock_moves_answers(clean_faults: Fleet, world: World, client: httpx.Client) -> None:
    fleet = clean_faults
    t2 = T1 + timedelta(days=20)
    fleet.clock.set(t2)
    url = f"{fleet.urls['viewing-history']}/v1/members/batch"
    body = client.post(url, json={"member_ids": list(range(50))}).json()
    assert body["as_of"] == t2.isoformat()
    assert body["results"] == [a for a in world.answer("viewing-history", list(range(50)), t2) if a]
    assert body["results"] != [a for a in world.answer("viewing-history", list(range(50)), T1) if a]


def test_running_clock_advances(clean_faults: Fleet, client: httpx.Client) -> None:
    clean_faults.clock.set(T1, rate=3600)  # an hour per second
    time.sleep(0.5)
    now = to_utc(client.get(f"{clean_faults.urls['ratings']}/healthz").json()["now"])
    assert T1 + timedelta(minutes=20) < now < T1 + timedelta(hours=2)


def test_error_faults(clean_faults: Fleet, client: httpx.Client) -> None:
    clean_faults.set_faults("ratings", FaultSettings(error_rate=1.0))
    statuses = {
        client.get(f"{clean_faults.urls['ratings']}/v1/members/1").status_code for _ in range(20)
    }
    assert statuses == {500, 503}
    assert clean_faults.fault_counts("ratings")["errors"] == 20


def test_error_rate_is_a_rate(clean_faults: Fleet, client: httpx.Client) -> None:
    clean_faults.set_faults("my-list", FaultSettings(error_rate=0.2))
    codes = [
        client.get(f"{clean_faults.urls['my-list']}/v1/members/1").status_code for _ in range(200)
    ]
    failed = sum(c >= 500 for c in codes)
    assert 20 <= failed <= 65  # 40 expected; binomial(200, 0.2) sd ~5.7


def test_malformed_bodies(clean_faults: Fleet, client: httpx.Client) -> None:
    clean_faults.set_faults("member-profile", FaultSettings(malformed_rate=1.0))
    response = client.get(f"{clean_faults.urls['member-profile']}/v1/members/1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_hangs_trigger_client_timeouts(clean_faults: Fleet) -> None:
    clean_faults.set_faults("viewing-history", FaultSettings(hang_rate=1.0, hang_seconds=5))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{clean_faults.urls['viewing-history']}/v1/members/1", timeout=0.5)
    assert time.monotonic() - started < 3


def test_rate_limit_gives_429_with_retry_after(clean_faults: Fleet, client: httpx.Client) -> None:
    clean_faults.set_faults(
        "ratings", FaultSettings(rate_limit_per_s=1, rate_limit_burst=3, retry_after_s=2)
    )
    codes = [client.get(f"{clean_faults.urls['ratings']}/v1/members/1") for _ in range(6)]
    assert [c.status_code for c in codes[:3]] == [200, 200, 200]
    limited = [c for c in codes[3:] if c.status_code == 429]
    assert limited and limited[0].headers["retry-after"] == "2"
    time.sleep(1.2)
    assert client.get(f"{clean_faults.urls['ratings']}/v1/members/1").status_code == 200


def test_latency_is_injected(clean_faults: Fleet, client: httpx.Client) -> None:
    url = f"{clean_faults.urls['member-profile']}/v1/members/1"
    client.get(url)
    clean_faults.set_faults("member-profile", FaultSettings(latency_ms=300, jitter_ms=100))
    started = time.monotonic()
    assert client.get(url).status_code == 200
    assert 0.3 <= time.monotonic() - started < 1.5


def test_faults_configured_at_start(tmp_path: Path, client: httpx.Client) -> None:
    faults = {"ratings": FaultSettings(error_rate=1.0, error_statuses=(503,))}
    with Fleet.up(tmp_path, world=WORLD, services=("ratings",), faults=faults) as small:
        assert client.get(f"{small.urls['ratings']}/v1/members/1").status_code == 503


def test_admin_needs_the_token(fleet: Fleet, client: httpx.Client) -> None:
    url = f"{fleet.urls['ratings']}/admin/faults"
    assert client.put(url, json={"error_rate": 1}).status_code == 401
    assert (
        client.put(
            url, json={"error_rate": 1}, headers={"Authorization": "Bearer wrong"}
        ).status_code
        == 401
    )
    assert client.get(f"{fleet.urls['ratings']}/v1/members/1").status_code == 200


def test_bad_fault_settings_are_rejected(fleet: Fleet, client: httpx.Client) -> None:
    response = client.put(
        f"{fleet.urls['ratings']}/admin/faults",
        json={"error_rate": 2},
        headers={"Authorization": f"Bearer {fleet.admin_token}"},
    )
    assert response.status_code == 422


def test_second_fleet_on_same_dir_is_refused(fleet: Fleet) -> None:
    with pytest.raises(FleetError, match="already running"):
        Fleet.up(fleet.state_dir, world=WORLD)


def test_down_stops_every_process(tmp_path: Path) -> None:
    small = Fleet.up(tmp_path, world=WORLD, services=("my-list", "ratings"))
    found = Fleet.load(tmp_path)
    assert found.urls == small.urls and found.alive()
    found.down()
    assert not small.alive()
    with pytest.raises(FleetError, match="no demo fleet"):
        Fleet.load(tmp_path)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{small.urls['ratings']}/healthz", timeout=1)
