"""A deterministic streaming-service world: members, titles, and what is true at any instant.

Everything is a pure function of ``(seed, member_id, t)``:

- **Attributes** (country, device, plan, signup, churn, viewing intensity, profile changes)
  come from a counter-based hash of ``(seed, member_id, field)``, so they are computed for a
  million members at once with numpy (the population export) or for one member (a service).
- **Event streams** (plays, my-list adds/removes, ratings) come from a numpy generator seeded
  with ``(seed, member_id)`` over the world's fixed horizon, generated once per member and
  cached; the state at ``t`` is the prefix of events at or before ``t``.

Shape: heavy-tailed viewing (log-normal intensity), weekly seasonality (weekends busier),
evening-peaked viewing, Zipf title popularity tilted by each member's genre taste, and churn.

Example:
    >>> world = World(seed=7, members=100)
    >>> world.state(3, "2026-06-01T00:00:00Z")["member-profile"]["plan"] in PLANS
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np

from timetravel.times import to_utc

__all__ = ["World", "MemberEvents", "SERVICES", "REGIONS", "DEVICES", "PLANS", "GENRES"]

SERVICES = ("viewing-history", "my-list", "ratings", "member-profile")
REGIONS = {
    "US": "NA",
    "CA": "NA",
    "MX": "LATAM",
    "BR": "LATAM",
    "GB": "EMEA",
    "DE": "EMEA",
    "FR": "EMEA",
    "IN": "APAC",
    "JP": "APAC",
    "KR": "APAC",
}
_COUNTRIES = tuple(REGIONS)
_COUNTRY_WEIGHTS = np.array([0.30, 0.05, 0.06, 0.10, 0.08, 0.07, 0.06, 0.12, 0.08, 0.08])
DEVICES = ("tv", "mobile", "web", "console")
_DEVICE_WEIGHTS = np.array([0.45, 0.30, 0.17, 0.08])
PLANS = ("basic", "standard", "premium")
_PLAN_WEIGHTS = np.array([0.35, 0.45, 0.20])
GENRES = (
    "drama",
    "comedy",
    "thriller",
    "documentary",
    "animation",
    "action",
    "romance",
    "horror",
    "sci-fi",
    "crime",
    "reality",
    "kids",
)
# Monday..Sunday: weekends are busier.
_WEEKLY = np.array([0.90, 0.85, 0.85, 0.90, 1.10, 1.35, 1.30])
_DAY = 86_400
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fast, well-mixed hash of uint64 counters."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class MemberEvents:
    """One member's whole event stream over the horizon; times are epoch seconds, sorted."""

    play_start: np.ndarray
    play_title: np.ndarray
    play_minutes: np.ndarray
    play_device: np.ndarray
    add_time: np.ndarray
    add_title: np.ndarray
    remove_time: np.ndarray  # +inf-like (max int64) when never removed
    rate_time: np.ndarray
    rate_title: np.ndarray
    rate_up: np.ndarray
    # ISO strings of the times above, formatted once per member instead of per request.
    play_start_iso: np.ndarray
    add_time_iso: np.ndarray
    rate_time_iso: np.ndarray


class World:
    """The demo world. ``start`` and ``days`` bound the horizon in which events happen."""

    def __init__(
        self,
        *,
        seed: int = 42,
        members: int = 10_000,
        titles: int = 1_000,
        start: datetime | str = "2026-01-01T00:00:00Z",
        days: int = 730,
        history_limit: int = 20,
    ) -> None:
        if members < 1 or titles < 1 or days < 1:
            raise ValueError("members, titles and days must be >= 1")
        self.seed = int(seed)
        self.members = int(members)
        self.titles = int(titles)
        self.start = to_utc(start)
        self.days = int(days)
        self.history_limit = int(history_limit)
        self._t0 = int(self.start.timestamp())
        self._t_end = self._t0 + self.days * _DAY
        catalog = np.random.default_rng([self.seed, 0xC47A106])
        self.title_genre = catalog.integers(0, len(GENRES), size=self.titles)
        ranks = catalog.permutation(self.titles) + 1
        popularity = 1.0 / ranks**0.9
        self.title_popularity = popularity / popularity.sum()
        self._events = lru_cache(maxsize=50_000)(self._generate_events)

    # ------------------------------------------------------------------ attributes
    def _uniform(self, ids: np.ndarray, field: int) -> np.ndarray:
        key = (np.uint64(self.seed) * np.uint64(0x100000001B3)) ^ (
            np.uint64(field) << np.uint64(40)
        )
        bits = _splitmix(ids.astype(np.uint64) ^ key)
        return (bits >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    def attributes(self, ids: np.ndarray | list[int]) -> dict[str, np.ndarray]:
        """Time-independent attributes of many members at once (vectorised)."""
        ids = np.asarray(ids, dtype=np.int64)
        u = {f: self._uniform(ids, f) for f in range(1, 12)}
        country = np.searchsorted(np.cumsum(_COUNTRY_WEIGHTS), u[1] * _COUNTRY_WEIGHTS.sum())
        device0 = np.searchsorted(np.cumsum(_DEVICE_WEIGHTS), u[2])
        plan0 = np.searchsorted(np.cumsum(_PLAN_WEIGHTS), u[3])
        # 85% joined before the horizon (up to ~3 years earlier), 15% during it.
        before = u[4] < 0.85
        since = np.where(
            before, self._t0 - (u[5] * 1000 * _DAY), self._t0 + u[5] * self.days * 0.8 * _DAY
        ).astype(np.int64)
        # Heavy-tailed intensity: expected plays per day, log-normal around ~0.6.
        z = np.sqrt(-2 * np.log(np.maximum(u[6], 1e-12))) * np.cos(2 * np.pi * u[7])
        intensity = np.exp(np.log(0.6) + 0.9 * z)
        churns = u[8] < 0.12
        churn_after = (u[9] * self.days * _DAY).astype(np.int64)
        churn_at = np.where(
            churns, np.maximum(since, self._t0) + churn_after, np.iinfo(np.int64).max
        )
        plan_change_at = (self._t0 + u[10] * self.days * 1.5 * _DAY).astype(np.int64)
        plan1 = (plan0 + 1 + (u[11] < 0.5)) % len(PLANS)
        return {
            "member_id": ids,
            "country": np.minimum(country, len(REGIONS) - 1),
            "device": np.minimum(device0, len(DEVICES) - 1),
            "plan0": np.minimum(plan0, len(PLANS) - 1),
            "plan1": plan1,
            "plan_change_at": plan_change_at,
            "member_since": since,
            "intensity": intensity,
            "churn_at": churn_at,
        }

    def profiles(self, ids: np.ndarray | list[int], t: datetime | str) -> dict[str, np.ndarray]:
        """The member-profile facts of many members at instant ``t`` (vectorised)."""
        ts = int(to_utc(t).timestamp())
        a = self.attributes(ids)
        plan = np.where(ts >= a["plan_change_at"], a["plan1"], a["plan0"])
        return {
            "member_id": a["member_id"],
            "country": a["country"],
            "device": a["device"],
            "plan": plan,
            "member_since": a["member_since"],
            "tenure_days": (ts - a["member_since"]) // _DAY,
            "exists": a["member_since"] <= ts,
            "churned": a["churn_at"] <= ts,
            "intensity": a["intensity"],
        }

    # ------------------------------------------------------------------ events
    def events(self, member_id: int) -> MemberEvents:
        """The member's whole event stream (cached)."""
        self._check_member(member_id)
        return self._events(int(member_id))

    def _generate_events(self, member_id: int) -> MemberEvents:
        a = {k: v[0] for k, v in self.attributes([member_id]).items()}
        rng = np.random.default_rng([self.seed, member_id, 0xE7E7])
        first = max(int(a["member_since"]), self._t0)
        last = min(int(a["churn_at"]), self._t_end)
        day0 = np.arange((first - self._t0) // _DAY, max((last - self._t0) // _DAY, 0) + 1)
        weekday = (self.start.weekday() + day0) % 7
        taste = rng.dirichlet(np.full(len(GENRES), 0.6))
        weights = self.title_popularity * taste[self.title_genre]
        weights /= weights.sum()

        counts = rng.poisson(a["intensity"] * _WEEKLY[weekday])
        play_day = np.repeat(day0, counts)
        hour = np.clip(rng.normal(20.5, 3.0, play_day.size), 0, 23.99)
        start = self._t0 + play_day * _DAY + (hour * 3600).astype(np.int64)
        keep = (start >= first) & (start < last)
        start = np.sort(start[keep])
        n = start.size
        play_title = rng.choice(self.titles, size=n, p=weights)
        minutes = np.clip(rng.lognormal(np.log(40), 0.6, n), 3, 180).round().astype(np.int64)
        other = rng.integers(0, len(DEVICES), n)
        device = np.where(rng.random(n) < 0.7, a["device"], other)

        n_adds = rng.poisson(0.05 * len(day0))
        add_time = np.sort(rng.integers(first, max(last, first + 1), n_adds))
        add_title = rng.choice(self.titles, size=n_adds, p=weights)
        removed = rng.random(n_adds) < 0.35
        remove_after = (rng.exponential(20, n_adds) * _DAY).astype(np.int64) + 1
        never = np.iinfo(np.int64).max
        removed &= add_time + remove_after < last
        remove_time = np.where(removed, add_time + remove_after, never)

        rated = rng.random(n) < 0.08
        rate_time = start[rated] + minutes[rated] * 60
        rate_title = play_title[rated]
        p_up = np.clip(0.3 + 3.0 * taste[self.title_genre[rate_title]], 0.05, 0.95)
        rate_up = rng.random(rate_title.size) < p_up
        # Ratings land when a play ends, so they are not in play order: sort them.
        order = np.argsort(rate_time, kind="stable")
        order = order[rate_time[order] < last]
        rate_time = rate_time[order]
        return MemberEvents(
            start,
            play_title,
            minutes,
            device,
            add_time,
            add_title,
            remove_time,
            rate_time,
            rate_title[order],
            rate_up[order],
            _isos(start),
            _isos(add_time),
            _isos(rate_time),
        )

    # ------------------------------------------------------------------ ground truth
    def state(
        self, member_id: int, t: datetime | str, services: tuple[str, ...] = SERVICES
    ) -> dict[str, Any]:
        """What each service would answer about ``member_id`` at instant ``t``.

        A member who has not joined yet at ``t`` is unknown: every service gives None.
        """
        return {name: self.answer(name, [member_id], t)[0] for name in services}

    def answer(self, service: str, member_ids: list[int], t: datetime | str) -> list[Any]:
        """One service's answers for many members at ``t`` (None for not-yet-members)."""
        if service not in SERVICES:
            raise KeyError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
        for member_id in member_ids:
            self._check_member(member_id)
        at = to_utc(t)
        as_of = at.isoformat()
        prof = self.profiles(member_ids, at)
        build = {
            "viewing-history": self._history,
            "my-list": self._my_list,
            "ratings": self._ratings,
            "member-profile": self._profile,
        }[service]
        ts = int(at.timestamp())
        return [
            build(int(m), ts, as_of, {k: v[i] for k, v in prof.items()})
            if prof["exists"][i]
            else None
            for i, m in enumerate(member_ids)
        ]

    def _history(self, member_id: int, ts: int, as_of: str, prof: dict[str, Any]) -> dict[str, Any]:
        ev = self.events(member_id)
        n = int(np.searchsorted(ev.play_start, ts, side="right"))
        lo = max(n - self.history_limit, 0)
        titles = ev.play_title[lo:n][::-1]
        plays = [
            {
                "title_id": title,
                "genre": GENRES[genre],
                "started_at": started,
                "duration_min": minutes,
                "device": DEVICES[device],
            }
            for title, genre, started, minutes, device in zip(
                titles.tolist(),
                self.title_genre[titles].tolist(),
                ev.play_start_iso[lo:n][::-1].tolist(),
                ev.play_minutes[lo:n][::-1].tolist(),
                ev.play_device[lo:n][::-1].tolist(),
                strict=True,
            )
        ]
        return {
            "member_id": member_id,
            "as_of": as_of,
            "total_plays": n,
            "total_minutes": int(ev.play_minutes[:n].sum()),
            "plays": plays,
        }

    def _my_list(self, member_id: int, ts: int, as_of: str, prof: dict[str, Any]) -> dict[str, Any]:
        ev = self.events(member_id)
        active = np.flatnonzero((ev.add_time <= ts) & (ev.remove_time > ts))
        keep = _latest_per_title(ev.add_title[active], ev.add_time[active])
        rows = active[keep]
        return {
            "member_id": member_id,
            "as_of": as_of,
            "size": int(rows.size),
            "titles": [
                {"title_id": t, "added_at": a}
                for t, a in zip(
                    ev.add_title[rows].tolist(), ev.add_time_iso[rows].tolist(), strict=True
                )
            ],
        }

    def _ratings(self, member_id: int, ts: int, as_of: str, prof: dict[str, Any]) -> dict[str, Any]:
        ev = self.events(member_id)
        n = int(np.searchsorted(ev.rate_time, ts, side="right"))
        rows = _latest_per_title(ev.rate_title[:n], ev.rate_time[:n])
        ups = ev.rate_up[rows]
        n_up = int(ups.sum())
        return {
            "member_id": member_id,
            "as_of": as_of,
            "thumbs_up": n_up,
            "thumbs_down": int(rows.size) - n_up,
            "ratings": [
                {"title_id": t, "thumbs_up": u, "rated_at": r}
                for t, u, r in zip(
                    ev.rate_title[rows].tolist(),
                    ups.tolist(),
                    ev.rate_time_iso[rows].tolist(),
                    strict=True,
                )
            ],
        }

    def _profile(self, member_id: int, ts: int, as_of: str, prof: dict[str, Any]) -> dict[str, Any]:
        country = _COUNTRIES[int(prof["country"])]
        return {
            "member_id": member_id,
            "as_of": as_of,
            "country": country,
            "region": REGIONS[country],
            "plan": PLANS[int(prof["plan"])],
            "primary_device": DEVICES[int(prof["device"])],
            "member_since": str(_isos(np.array([prof["member_since"]]))[0]),
            "tenure_days": int(prof["tenure_days"]),
            "status": "churned" if prof["churned"] else "active",
        }

    def _check_member(self, member_id: int) -> None:
        if not 0 <= int(member_id) < self.members:
            raise KeyError(f"unknown member {member_id}; members are 0..{self.members - 1}")


def _latest_per_title(titles: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Indices of each title's latest event (ties: the later-listed one), newest first."""
    if titles.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(titles.size), times))[::-1]  # newest first, stable
    _, first = np.unique(titles[order], return_index=True)
    keep = order[first]
    return keep[np.lexsort((titles[keep], -times[keep]))]


def _isos(epoch_seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds to ISO-8601 UTC strings ('2026-01-02T03:04:05+00:00'), vectorised."""
    text = np.datetime_as_string(
        np.asarray(epoch_seconds, dtype=np.int64).astype("datetime64[s]"), unit="s"
    )
    return np.char.add(text, "+00:00").astype(object)
