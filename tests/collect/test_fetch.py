"""Fetching without Spark or a network: batch requests and matching, plugins, retries.

Every case drives :func:`timetravel.collect.fetch.fetch_pairs` over ``httpx.MockTransport``, so
what is checked is the request the service would see and the outcome each pair gets.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from timetravel.collect.fetch import Outcome, TaskLimits, fetch_pairs
from timetravel.config import SourceSettings

LIMITS = TaskLimits(concurrency=4, rate_per_s=None)


def source(**overrides: Any) -> SourceSettings:
    settings: dict[str, Any] = {
        "name": "devices",
        "base_url": "http://svc",
        "schema": "x int",
        "retries": 1,
        "backoff_base_s": 0.0,
        "backoff_max_s": 0.0,
    }
    return SourceSettings(**{**settings, **overrides})


def run(
    settings: SourceSettings, entity: list[str], keys: list[tuple[Any, ...]], handler: Any
) -> list[Outcome]:
    return fetch_pairs(
        {settings.name: settings},
        {settings.name: LIMITS},
        entity,
        [(settings.name, key) for key in keys],
        transport=httpx.MockTransport(handler),
    )


def by_key(outcomes: list[Outcome]) -> dict[tuple[Any, ...], Outcome]:
    assert len(outcomes) == len({o.key for o in outcomes}), "one outcome per pair"
    return {o.key: o for o in outcomes}


def test_composite_keys_are_sent_and_matched_whole() -> None:
    # Two contexts share member 7 and differ by device: a service that matched on the first
    # column only would give both the same payload.
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["member_ids"]
        sent.extend(ids)
        results = [
            {
                "member_id": i["member_id"],
                "device": i["device"],
                "x": i["member_id"] * 10 + i["device"],
            }
            for i in ids
            if i["device"] != 9
        ]
        return httpx.Response(200, json={"results": results, "as_of": "2026-06-01T00:00:00Z"})

    keys = [(7, 1), (7, 2), (8, 1), (7, 9)]
    outcomes = by_key(run(source(), ["member_id", "device"], keys, handler))
    assert sorted(sent, key=lambda i: (i["member_id"], i["device"])) == [
        {"member_id": 7, "device": 1},
        {"member_id": 7, "device": 2},
        {"member_id": 7, "device": 9},
        {"member_id": 8, "device": 1},
    ]
    assert json.loads(outcomes[(7, 1)].payload or "")["x"] == 71
    assert json.loads(outcomes[(7, 2)].payload or "")["x"] == 72
    assert json.loads(outcomes[(8, 1)].payload or "")["x"] == 81
    assert not outcomes[(7, 9)].ok and outcomes[(7, 9)].error_class == "NotFound"


def test_composite_keys_follow_the_key_map() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["member_ids"]
        return httpx.Response(
            200, json={"results": [{"id": i["id"], "dev": i["dev"], "x": i["dev"]} for i in ids]}
        )

    settings = source(key_map={"member_id": "id", "device": "dev"})
    outcomes = by_key(run(settings, ["member_id", "device"], [(1, 5), (1, 6)], handler))
    assert {k: json.loads(o.payload or "")["x"] for k, o in outcomes.items()} == {
        (1, 5): 5,
        (1, 6): 6,
    }


def test_a_single_key_is_sent_as_bare_values() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["member_ids"]
        assert ids == [3, 4]
        return httpx.Response(200, json={"results": [{"member_id": 4, "x": 1}], "missing": [3]})

    outcomes = by_key(run(source(), ["member_id"], [(3,), (4,)], handler))
    assert outcomes[(4,)].ok and not outcomes[(3,)].ok


class ShortPlugin:
    """Answers one payload fewer than it was asked for."""

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    async def fetch(self, keys: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        return [{"x": 1} for _ in keys[1:]]


def test_a_plugin_that_answers_short_fails_every_pair_visibly() -> None:
    settings = source(plugin=f"{__name__}:ShortPlugin", base_url=None, batch_size=3)
    outcomes = run(settings, ["member_id"], [(1,), (2,), (3,)], lambda r: httpx.Response(500))
    assert sorted(o.key for o in outcomes) == [(1,), (2,), (3,)]
    assert all(not o.ok and o.error_class == "MalformedResponse" for o in outcomes)
    assert all(o.attempts == 2 for o in outcomes)  # retried, then recorded
    assert "2 payloads for 3 keys" in (outcomes[0].error_message or "")


def test_retries_honour_retry_after_then_succeed() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"results": [{"member_id": 1, "x": 2}]})

    [outcome] = run(source(), ["member_id"], [(1,)], handler)
    assert outcome.ok and outcome.attempts == 2


def test_a_4xx_is_not_retried_and_every_pair_is_recorded() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, text="bad")

    outcomes = run(source(retries=3), ["member_id"], [(1,), (2,)], handler)
    assert len(calls) == 1
    assert [(o.ok, o.last_status, o.error_class) for o in outcomes] == [
        (False, 400, "HTTP400"),
        (False, 400, "HTTP400"),
    ]


def test_a_malformed_body_is_retried_then_recorded() -> None:
    outcomes = run(
        source(retries=2),
        ["member_id"],
        [(1,)],
        lambda r: httpx.Response(200, content=b"{not json"),
    )
    assert [(o.ok, o.attempts, o.error_class) for o in outcomes] == [
        (False, 3, "MalformedResponse")
    ]


def test_the_as_of_field_is_the_configured_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"results": [{"member_id": 1, "x": 1, "true_at": "2026-06-01T00:00:00Z"}]}
        )

    [outcome] = run(source(as_of_field="true_at"), ["member_id"], [(1,)], handler)
    assert outcome.as_of_micros == 1_780_272_000_000_000


def test_each_outcome_carries_how_long_its_source_took() -> None:
    import asyncio

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        if b"2" in request.content:
            return httpx.Response(400, text="bad")
        return httpx.Response(200, json={"results": [{"member_id": 1, "x": 2}]})

    outcomes = by_key(run(source(batch_size=1), ["member_id"], [(1,), (2,)], slow))
    assert outcomes[(1,)].ok and not outcomes[(2,)].ok
    for outcome in outcomes.values():  # failures too: a slow error is worth seeing
        assert outcome.latency_ms is not None and 50 <= outcome.latency_ms < 5000
