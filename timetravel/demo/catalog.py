"""The encoders over the demo fleet's facts (viewing history, my list, ratings, profile).

Windows are relative to the label time ``t`` and half-open on the left: "in the last 7 days"
means ``t - 7d < event_time <= t``. Events come from the chosen snapshot only (the as-of
join never hands over anything newer), so a window reaching past the snapshot sees what the
service knew then: the viewing-history service reports its latest plays only.
"""

from __future__ import annotations

import numpy as np

from timetravel.encoders.base import MICROS_PER_DAY, Encoder, FactBatch
from timetravel.encoders.registry import Registry

__all__ = ["demo_encoders", "default_registry", "GENRES"]

from timetravel.demo.world import GENRES

_HISTORY = "viewing-history"


def _in_window(batch: FactBatch, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(row of each play, whether it started within the last ``days`` before t)."""
    parents, started = batch.elements(_HISTORY, "plays", "started_at")
    s = batch.micros(started)
    t = batch.t[parents]
    return parents, (s > t - days * MICROS_PER_DAY) & (s <= t)


def _plays(days: int):
    def compute(batch: FactBatch) -> np.ndarray:
        parents, inside = _in_window(batch, days)
        return np.bincount(parents[inside], minlength=batch.num_rows).astype(np.int64)

    return compute


def _hours_28d(batch: FactBatch) -> np.ndarray:
    parents, inside = _in_window(batch, 28)
    _, minutes = batch.elements(_HISTORY, "plays", "duration_min")
    m = np.nan_to_num(minutes.to_numpy(zero_copy_only=False).astype(np.float64))
    return np.bincount(parents[inside], weights=m[inside], minlength=batch.num_rows) / 60.0


def _genre_share(genre: str):
    def compute(batch: FactBatch) -> tuple[np.ndarray, np.ndarray]:
        parents, inside = _in_window(batch, 28)
        _, genres = batch.elements(_HISTORY, "plays", "genre")
        is_genre = np.asarray(genres.to_numpy(zero_copy_only=False) == genre, dtype=bool)
        total = np.bincount(parents[inside], minlength=batch.num_rows)
        hits = np.bincount(parents[inside & is_genre], minlength=batch.num_rows)
        return hits / np.maximum(total, 1), total > 0

    return compute


def _days_since_last_play(batch: FactBatch) -> tuple[np.ndarray, np.ndarray]:
    parents, started = batch.elements(_HISTORY, "plays", "started_at")
    s = batch.micros(started)
    t = batch.t
    seen = s <= t[parents]
    latest = np.full(batch.num_rows, np.iinfo(np.int64).min)
    np.maximum.at(latest, parents[seen], s[seen])
    valid = latest != np.iinfo(np.int64).min
    return np.where(valid, (t - latest) / MICROS_PER_DAY, 0.0), valid


def _lifetime_hours(batch: FactBatch) -> np.ndarray:
    return batch.numbers(_HISTORY, "total_minutes") / 60.0


def _my_list_added_7d(batch: FactBatch) -> np.ndarray:
    parents, added = batch.elements("my-list", "titles", "added_at")
    a = batch.micros(added)
    t = batch.t[parents]
    inside = (a > t - 7 * MICROS_PER_DAY) & (a <= t)
    return np.bincount(parents[inside], minlength=batch.num_rows).astype(np.int64)


def _ratings_count(batch: FactBatch) -> np.ndarray:
    return (batch.numbers("ratings", "thumbs_up") + batch.numbers("ratings", "thumbs_down")).astype(
        np.int64
    )


def _thumbs_up_share(batch: FactBatch) -> tuple[np.ndarray, np.ndarray]:
    up = batch.numbers("ratings", "thumbs_up")
    total = up + batch.numbers("ratings", "thumbs_down")
    return up / np.maximum(total, 1), total > 0


def _tenure_days(batch: FactBatch) -> tuple[np.ndarray, np.ndarray]:
    since = batch.micros(batch.column("member-profile", "member_since"))
    valid = since != np.iinfo(np.int64).min
    return np.where(valid, (batch.t - since) // MICROS_PER_DAY, 0), valid


def demo_encoders() -> list[Encoder]:
    """Every encoder of the demo catalog, current versions."""
    history = {_HISTORY: ("plays",)}
    encoders = [
        Encoder(
            "plays_7d",
            1,
            "Plays started in the 7 days before t (from the reported history)",
            "engagement",
            history,
            "long",
            _plays(7),
            ("engagement",),
        ),
        Encoder(
            "plays_28d",
            1,
            "Plays started in the 28 days before t (from the reported history)",
            "engagement",
            history,
            "long",
            _plays(28),
            ("engagement",),
        ),
        Encoder(
            "hours_watched_28d",
            1,
            "Hours of plays started in the 28 days before t",
            "engagement",
            {_HISTORY: ("plays",)},
            "double",
            _hours_28d,
            ("engagement",),
        ),
        Encoder(
            "days_since_last_play",
            1,
            "Days from the latest reported play to t (null if none)",
            "engagement",
            history,
            "double",
            _days_since_last_play,
            ("engagement", "recency"),
        ),
        Encoder(
            "lifetime_plays",
            1,
            "Plays since joining, as of the snapshot",
            "engagement",
            {_HISTORY: ("total_plays",)},
            "long",
            lambda b: b.column(_HISTORY, "total_plays"),
            ("engagement",),
        ),
        Encoder(
            "lifetime_hours",
            1,
            "Hours watched since joining, as of the snapshot",
            "engagement",
            {_HISTORY: ("total_minutes",)},
            "double",
            _lifetime_hours,
            ("engagement",),
        ),
        Encoder(
            "my_list_size",
            1,
            "Titles on my list at the snapshot",
            "personalization",
            {"my-list": ("size",)},
            "long",
            lambda b: b.column("my-list", "size"),
            ("intent",),
        ),
        Encoder(
            "my_list_added_7d",
            1,
            "Titles added to my list in the 7 days before t (still on it at the snapshot)",
            "personalization",
            {"my-list": ("titles",)},
            "long",
            _my_list_added_7d,
            ("intent",),
        ),
        Encoder(
            "ratings_count",
            1,
            "Titles rated (latest rating per title)",
            "personalization",
            {"ratings": ("thumbs_up", "thumbs_down")},
            "long",
            _ratings_count,
            ("taste",),
        ),
        Encoder(
            "thumbs_up_share",
            1,
            "Share of rated titles rated thumbs-up (null if none)",
            "personalization",
            {"ratings": ("thumbs_up", "thumbs_down")},
            "double",
            _thumbs_up_share,
            ("taste",),
        ),
        Encoder(
            "tenure_days",
            1,
            "Whole days from joining to t",
            "membership",
            {"member-profile": ("member_since",)},
            "long",
            _tenure_days,
            ("account",),
        ),
        Encoder(
            "plan",
            1,
            "Plan at the snapshot (basic, standard, premium)",
            "membership",
            {"member-profile": ("plan",)},
            "string",
            lambda b: b.column("member-profile", "plan"),
            ("account",),
        ),
        Encoder(
            "is_churned",
            1,
            "Whether the member had churned at the snapshot",
            "membership",
            {"member-profile": ("status",)},
            "boolean",
            lambda b: _equals(b.column("member-profile", "status"), "churned"),
            ("account",),
        ),
    ]
    for genre in GENRES:
        encoders.append(
            Encoder(
                f"genre_share_28d_{genre.replace('-', '_')}",
                1,
                f"Share of the plays in the 28 days before t that were {genre} (null if none)",
                "engagement",
                history,
                "double",
                _genre_share(genre),
                ("genre",),
            )
        )
    return encoders


def _equals(values, text: str):
    import pyarrow.compute as pc

    return pc.equal(values, text)


def default_registry() -> Registry:
    """A fresh registry holding the demo catalog."""
    return Registry(demo_encoders())
