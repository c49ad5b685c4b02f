"""Demo encoders on hand-built batches, with hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from timetravel.demo.catalog import default_registry
from timetravel.encoders import (
    Encoder,
    FactBatch,
    Registry,
    encode_columns,
    encode_online,
    online_batch,
)
from timetravel.errors import FeatureError

T = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
PLAY = pa.struct(
    [
        ("title_id", pa.int32()),
        ("genre", pa.string()),
        ("started_at", TS),
        ("duration_min", pa.int32()),
        ("device", pa.string()),
    ]
)


def play(genre: str, started: datetime, minutes: int) -> dict[str, object]:
    return {
        "title_id": 1,
        "genre": genre,
        "started_at": started,
        "duration_min": minutes,
        "device": "tv",
    }


def history_batch(rows: list[list[dict[str, object]] | None], t: datetime = T) -> FactBatch:
    """One row per entry: a list of plays (a snapshot) or None (no usable snapshot)."""
    return FactBatch(
        pa.table(
            {
                "label_time": pa.array([t] * len(rows), TS),
                "viewing_history__snapshot_time": pa.array(
                    [None if r is None else t for r in rows], TS
                ),
                "viewing_history__plays": pa.array(
                    [r if r is not None else None for r in rows], pa.list_(PLAY)
                ),
            }
        )
    )


def values(batch: FactBatch, *names: str) -> dict[str, list[object]]:
    registry = default_registry()
    out = encode_columns(batch.table, [registry.get(n) for n in names])
    return {n: out[n].to_pylist() for n in names}


def test_windows_are_half_open_on_the_left_and_include_t() -> None:
    plays = [
        play("drama", T, 60),  # exactly t: in
        play("comedy", T - timedelta(days=7) + timedelta(seconds=1), 30),  # in 7d
        play("drama", T - timedelta(days=7), 90),  # exactly 7d: out of 7d
        play("drama", T - timedelta(days=28), 120),  # exactly 28d: out of 28d
        play("kids", T - timedelta(days=40), 10),
    ]
    got = values(
        history_batch([plays, [], None]),
        "plays_7d",
        "plays_28d",
        "hours_watched_28d",
        "genre_share_28d_drama",
        "genre_share_28d_comedy",
        "days_since_last_play",
    )
    assert got["plays_7d"] == [2, 0, None]
    assert got["plays_28d"] == [3, 0, None]
    assert got["hours_watched_28d"] == [(60 + 30 + 90) / 60, 0.0, None]
    assert got["genre_share_28d_drama"] == [2 / 3, None, None]  # no plays in window: null
    assert got["genre_share_28d_comedy"] == [1 / 3, None, None]
    assert got["days_since_last_play"] == [0.0, None, None]


def test_days_since_last_play_is_relative_to_the_label_time() -> None:
    later = T + timedelta(days=3, hours=12)
    batch = history_batch([[play("drama", T - timedelta(days=1), 5)]], t=later)
    assert values(batch, "days_since_last_play")["days_since_last_play"] == [4.5]


def test_ratings_and_profile_encoders() -> None:
    batch = FactBatch(
        pa.table(
            {
                "label_time": pa.array([T, T, T], TS),
                "ratings__snapshot_time": pa.array([T, T, None], TS),
                "ratings__thumbs_up": pa.array([3, 0, 9], pa.int32()),
                "ratings__thumbs_down": pa.array([1, 0, 9], pa.int32()),
                "member_profile__snapshot_time": pa.array([T, T, T], TS),
                "member_profile__member_since": pa.array(
                    [T - timedelta(days=10, hours=1), T - timedelta(hours=23), None], TS
                ),
                "member_profile__plan": pa.array(["basic", "premium", None]),
                "member_profile__status": pa.array(["active", "churned", "active"]),
            }
        )
    )
    got = values(batch, "ratings_count", "thumbs_up_share", "tenure_days", "plan", "is_churned")
    assert got == {
        "ratings_count": [4, 0, None],
        "thumbs_up_share": [0.75, None, None],
        "tenure_days": [10, 0, None],
        "plan": ["basic", "premium", None],
        "is_churned": [False, True, False],
    }


def test_online_path_gives_the_offline_values() -> None:
    payload = {
        "member_id": 5,
        "as_of": (T - timedelta(days=1)).isoformat(),
        "plays": [
            {
                **play("drama", T - timedelta(days=2), 45),
                "started_at": (T - timedelta(days=2)).isoformat(),
            }
        ],
    }
    schemas = {"viewing-history": pa.schema([("plays", pa.list_(PLAY))])}
    registry = default_registry()
    encoders = [registry.get(n) for n in ("plays_7d", "hours_watched_28d", "days_since_last_play")]
    online = encode_online(encoders, {"viewing-history": payload}, T, schemas)
    offline = values(
        history_batch([[play("drama", T - timedelta(days=2), 45)]]),
        "plays_7d",
        "hours_watched_28d",
        "days_since_last_play",
    )
    assert (
        online
        == {k: v[0] for k, v in offline.items()}
        == {"plays_7d": 1, "hours_watched_28d": 0.75, "days_since_last_play": 2.0}
    )
    unknown = encode_online(encoders, {"viewing-history": None}, T, schemas)
    assert unknown == {"plays_7d": None, "hours_watched_28d": None, "days_since_last_play": None}


def test_online_snapshot_time_reads_the_sources_configured_as_of_field() -> None:
    # The snapshot job takes a fact's time from the source's as_of_field; the online path
    # must read the same field, or online and offline disagree on which facts are current.
    true_at, other = T - timedelta(hours=5), T - timedelta(days=3)
    payload = {
        "member_id": 5,
        "true_at": true_at.isoformat(),
        "as_of": other.isoformat(),
        "plays": [],
    }
    schemas = {"viewing-history": pa.schema([("plays", pa.list_(PLAY))])}
    column = "viewing_history__snapshot_time"
    renamed = online_batch(
        {"viewing-history": payload}, T, schemas, as_of_fields={"viewing-history": "true_at"}
    )
    assert renamed.table.column(column).to_pylist() == [true_at]
    default = online_batch({"viewing-history": payload}, T, schemas)
    assert default.table.column(column).to_pylist() == [other]
    without = online_batch(
        {"viewing-history": payload}, T, schemas, as_of_fields={"viewing-history": None}
    )
    assert without.table.column(column).to_pylist() == [T]  # the instant of asking


def test_registry_keeps_versions_and_names_the_known_features() -> None:
    def constant(batch: FactBatch) -> pa.Array:
        return pa.array([1] * batch.num_rows)

    v1 = Encoder("x", 1, "one", "me", {"ratings": ("thumbs_up",)}, "long", constant)
    v2 = Encoder("x", 2, "two", "me", {"ratings": ("thumbs_up",)}, "long", constant)
    registry = Registry([v1, v2])
    assert registry.get("x") is v2 and registry.get("x", 1) is v1
    with pytest.raises(FeatureError, match=r"already registered"):
        registry.register(v1)
    with pytest.raises(FeatureError, match=r"unknown feature\(s\) \['nope'\]; known: x"):
        registry.resolve(["x", "nope"])
    with pytest.raises(FeatureError, match="has no version 3; versions: 1, 2"):
        registry.get("x", 3)
    with pytest.raises(FeatureError, match="more than once"):
        registry.resolve(["x", "x"])
    assert [e.name for e in default_registry().current(tag="account")] == [
        "is_churned",
        "plan",
        "tenure_days",
    ]
