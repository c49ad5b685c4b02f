"""The world's ground truth: deterministic, consistent with its events, realistically shaped."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from timetravel.demo.world import DEVICES, PLANS, SERVICES, World
from timetravel.times import to_utc

T1 = to_utc("2026-06-01T00:00:00Z")
T2 = T1 + timedelta(days=30)


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, members=3000)


def test_same_seed_same_answers(world: World) -> None:
    twin = World(seed=11, members=3000)
    for member in (0, 17, 2999):
        assert world.state(member, T1) == twin.state(member, T1)


def test_other_seed_other_world() -> None:
    a, b = World(seed=1, members=50), World(seed=2, members=50)
    assert [a.state(m, T1) for m in range(50)] != [b.state(m, T1) for m in range(50)]


def test_state_is_a_function_of_t_not_of_call_order(world: World) -> None:
    later_first = world.state(5, T2)
    earlier = world.state(5, T1)
    fresh = World(seed=11, members=3000)
    assert fresh.state(5, T1) == earlier and fresh.state(5, T2) == later_first


def test_viewing_history_grows_with_time_and_matches_events(world: World) -> None:
    member = _active_member(world)
    before, after = (
        world.state(member, T1)["viewing-history"],
        world.state(member, T2)["viewing-history"],
    )
    events = world.events(member)
    expected = int(
        (
            (events.play_start <= int(T2.timestamp())) & (events.play_start > int(T1.timestamp()))
        ).sum()
    )
    assert after["total_plays"] - before["total_plays"] == expected
    starts = [p["started_at"] for p in after["plays"]]
    assert starts == sorted(starts, reverse=True)  # most recent first
    assert len(after["plays"]) == min(world.history_limit, after["total_plays"])
    assert all(to_utc(s) <= T2 for s in starts)  # nothing from the future


def test_a_play_at_exactly_t_is_visible(world: World) -> None:
    member = _active_member(world)
    events = world.events(member)
    instant = int(events.play_start[len(events.play_start) // 2])
    at = to_utc("1970-01-01T00:00:00Z") + timedelta(seconds=instant)
    just_before = world.state(member, at - timedelta(seconds=1))["viewing-history"]
    exactly = world.state(member, at)["viewing-history"]
    assert exactly["total_plays"] == just_before["total_plays"] + 1
    assert exactly["plays"][0]["started_at"] == at.isoformat()


def test_ratings_keep_the_latest_per_title(world: World) -> None:
    for member in range(200):
        ratings = world.state(member, T2)["ratings"]
        if ratings is None:
            continue
        titles = [r["title_id"] for r in ratings["ratings"]]
        assert len(titles) == len(set(titles))
        assert ratings["thumbs_up"] == sum(r["thumbs_up"] for r in ratings["ratings"])
        assert all(to_utc(r["rated_at"]) <= T2 for r in ratings["ratings"])


def test_my_list_follows_adds_and_removes(world: World) -> None:
    changed = 0
    for member in range(300):
        a, b = world.state(member, T1)["my-list"], world.state(member, T2)["my-list"]
        if a is None or b is None:
            continue
        ev = world.events(member)
        ts = int(T2.timestamp())
        active = {
            int(t)
            for t, s, e in zip(ev.add_title, ev.add_time, ev.remove_time, strict=True)
            if s <= ts < e
        }
        assert {t["title_id"] for t in b["titles"]} == active
        assert b["size"] == len(active)
        changed += a["titles"] != b["titles"]
    assert changed > 10  # the list does move over a month


def test_member_unknown_before_joining(world: World) -> None:
    attrs = world.attributes(np.arange(world.members))
    late = int(np.argmax(attrs["member_since"]))
    joined = to_utc("1970-01-01T00:00:00Z") + timedelta(seconds=int(attrs["member_since"][late]))
    assert world.state(late, joined - timedelta(seconds=1)) == {s: None for s in SERVICES}
    assert world.state(late, joined)["member-profile"]["tenure_days"] == 0


def test_churned_members_stop_watching(world: World) -> None:
    attrs = world.attributes(np.arange(world.members))
    churned = np.flatnonzero(attrs["churn_at"] < int(T1.timestamp()))
    assert 0.02 < churned.size / world.members < 0.2
    member = int(churned[0])
    assert world.state(member, T1)["member-profile"]["status"] == "churned"
    assert (
        world.state(member, T1)["viewing-history"]["total_plays"]
        == world.state(member, T2)["viewing-history"]["total_plays"]
    )


def test_profiles_are_vectorised_state(world: World) -> None:
    ids = np.arange(100)
    prof = world.profiles(ids, T1)
    for member in range(100):
        answer = world.state(member, T1)["member-profile"]
        if answer is None:
            assert not prof["exists"][member]
            continue
        assert answer["plan"] == PLANS[prof["plan"][member]]
        assert answer["primary_device"] == DEVICES[prof["device"][member]]


def test_heavy_tailed_viewing_and_weekly_seasonality(world: World) -> None:
    totals = np.array([world.events(m).play_start.size for m in range(1000)])
    assert np.percentile(totals, 99) > 4 * np.median(totals)  # heavy tail
    starts = np.concatenate([world.events(m).play_start for m in range(1000)])
    weekday = ((starts // 86_400) + 3) % 7  # 1970-01-01 was a Thursday
    per_day = np.bincount(weekday, minlength=7)
    assert per_day[5:].mean() > 1.2 * per_day[:4].mean()  # weekends busier


def test_unknown_member_and_service(world: World) -> None:
    with pytest.raises(KeyError, match="unknown member 3000; members are 0..2999"):
        world.state(3000, T1)
    with pytest.raises(KeyError, match="unknown service 'likes'; known: viewing-history"):
        world.answer("likes", [1], T1)


def _active_member(world: World) -> int:
    for member in range(world.members):
        state = world.state(member, T1)["member-profile"]
        if (
            state
            and state["status"] == "active"
            and world.state(member, T2)["viewing-history"]["total_plays"]
            > world.state(member, T1)["viewing-history"]["total_plays"] + 5
        ):
            return member
    raise AssertionError("no active member")
