"""The as-of contract, with hand-computed expectations and a brute-force reference.

Every test runs on every engine (parametrized ``pit`` fixture); rows come back as dicts with
timestamps as 'YYYY-MM-DD HH:MM:SS' UTC strings, sorted, so expectations read like a table.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from tests.utils.asof_engines import ENGINES, PitRunner, _collect, sort_key
from timetravel.errors import AsOfError

pytestmark = pytest.mark.spark

D = "2026-01-01 "  # the day every hand-written instant is on
LABELS = "context_id long, label_time timestamp, y string"
SNAPS = "context_id long, snapshot_time timestamp, v long, x string"


@pytest.fixture(params=ENGINES)
def pit(request: pytest.FixtureRequest, spark) -> PitRunner:  # type: ignore[no-untyped-def]
    return PitRunner(request.param, spark)


def t(hhmmss: str) -> str:
    return D + hhmmss


def test_at_or_before_with_exact_equality_and_missing_history(pit: PitRunner) -> None:
    labels = [
        (1, t("00:30:00"), "before any"),
        (1, t("02:00:00"), "exactly at 02"),
        (1, t("02:59:59"), "just before 03"),
        (1, t("05:00:00"), "after all"),
        (3, t("05:00:00"), "no history"),
    ]
    snaps = [
        (1, t("01:00:00"), 10, "a"),
        (1, t("02:00:00"), 20, "b"),
        (1, t("03:00:00"), 30, "c"),
        (2, t("01:00:00"), 100, "z"),
    ]
    got = pit.run(labels, LABELS, {"s": (snaps, SNAPS)})
    assert [(r["y"], r["s__v"], r["s__x"], r["s__snapshot_time"]) for r in got] == [
        ("after all", 30, "c", t("03:00:00")),
        ("before any", None, None, None),
        ("exactly at 02", 20, "b", t("02:00:00")),
        ("just before 03", 20, "b", t("02:00:00")),
        ("no history", None, None, None),
    ]


def one_label_with_written_time(
    pit: PitRunner, snaps: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The row of one label at 04:00 for key 1, snapshots carrying a ``written_at`` time."""
    return pit.run(
        [(1, t("04:00:00"), "l")],
        LABELS,
        {"s": (snaps, SNAPS + ", written_at timestamp")},
        written_time="written_at",
    )


def test_ties_on_snapshot_time_go_to_the_latest_written(pit: PitRunner) -> None:
    snaps = [
        (1, t("03:00:00"), 31, "older write", t("09:00:00")),
        (1, t("03:00:00"), 30, "newer write", t("10:00:00")),
        (1, t("03:00:00"), 29, "oldest write", t("08:00:00")),
    ]
    got = one_label_with_written_time(pit, snaps)
    assert [(r["s__v"], r["s__x"]) for r in got] == [(30, "newer write")]
    assert "s__written_at" not in got[0]


def test_ties_without_written_time_are_deterministic(pit: PitRunner) -> None:
    # No written time: the greatest primitive feature values (v, then x) win.
    snaps = [(1, t("03:00:00"), 5, "b"), (1, t("03:00:00"), 7, "a"), (1, t("03:00:00"), 7, "c")]
    got = pit.run([(1, t("04:00:00"), "l")], LABELS, {"s": (snaps, SNAPS)})
    assert [(r["s__v"], r["s__x"]) for r in got] == [(7, "c")]


def test_null_tie_values_lose(pit: PitRunner) -> None:
    # Same snapshot time. Without a written time: v=7 beats v=null, then x="a" beats
    # x=null. With one: a null written time loses to any written time.
    snaps = [(1, t("03:00:00"), None, "z"), (1, t("03:00:00"), 7, None), (1, t("03:00:00"), 7, "a")]
    got = pit.run([(1, t("04:00:00"), "l")], LABELS, {"s": (snaps, SNAPS)})
    assert [(r["s__v"], r["s__x"]) for r in got] == [(7, "a")]
    written = [
        (1, t("03:00:00"), 1, "unknown write", None),
        (1, t("03:00:00"), 2, "early write", t("08:00:00")),
    ]
    got = one_label_with_written_time(pit, written)
    assert [(r["s__v"], r["s__x"]) for r in got] == [(2, "early write")]


def test_staleness_boundary_is_inclusive(pit: PitRunner) -> None:
    labels = [
        (1, t("04:00:00"), "exactly 1h after"),
        (1, t("04:00:00.000001"), "1h + 1us"),
        (1, t("03:30:00"), "30 min after"),
    ]
    snaps = [(1, t("03:00:00"), 30, "c")]
    got = pit.run(labels, LABELS, {"s": (snaps, SNAPS)}, max_staleness=timedelta(hours=1))
    assert [(r["y"], r["s__v"]) for r in got] == [
        ("1h + 1us", None),
        ("30 min after", 30),
        ("exactly 1h after", 30),
    ]


@pytest.mark.parametrize("bounded", [False, True])
def test_the_first_and_last_instants_and_the_epoch(pit: PitRunner, bounded: bool) -> None:
    # Year 1 and year 9999 (negative and large micros), either side of the epoch, with a
    # written-time tie at year 1; bounded: one microsecond of staleness, inclusive.
    labels = [
        (1, "0001-01-01 00:00:00", "year 1 exactly"),
        (1, "1969-12-31 23:59:59.999999", "1us before the epoch"),
        (1, "1970-01-01 00:00:00", "the epoch"),
        (1, "9999-12-31 23:59:59.999998", "1us before the end"),
        (1, "9999-12-31 23:59:59.999999", "the last instant"),
    ]
    snaps = [
        (1, "0001-01-01 00:00:00", 11, "year 1, later write", "0001-01-01 00:00:02"),
        (1, "0001-01-01 00:00:00", 10, "year 1, earlier write", "0001-01-01 00:00:01"),
        (1, "1969-12-31 23:59:59.999999", 2, "pre-epoch", "1970-01-01 00:00:00"),
        (1, "9999-12-31 23:59:59.999999", 3, "last", "9999-12-31 23:59:59.999999"),
    ]
    got = pit.run(
        labels,
        LABELS,
        {"s": (snaps, SNAPS + ", written_at timestamp")},
        written_time="written_at",
        max_staleness=timedelta(microseconds=1) if bounded else None,
    )
    assert [(r["y"], r["s__v"], r["s__snapshot_time"]) for r in got] == [
        ("1us before the end", None if bounded else 2, None if bounded else _PRE_EPOCH),
        ("1us before the epoch", 2, _PRE_EPOCH),
        ("the epoch", 2, _PRE_EPOCH),
        ("the last instant", 3, "9999-12-31 23:59:59.999999"),
        ("year 1 exactly", 11, "0001-01-01 00:00:00"),
    ]


_PRE_EPOCH = "1969-12-31 23:59:59.999999"


def test_a_stale_latest_snapshot_is_not_replaced_by_an_older_one(pit: PitRunner) -> None:
    snaps = [(1, t("01:00:00"), 10, "a"), (1, t("02:00:00"), 20, "b")]
    got = pit.run(
        [(1, t("05:00:00"), "l")], LABELS, {"s": (snaps, SNAPS)}, max_staleness=timedelta(hours=2)
    )
    assert [(r["s__v"], r["s__snapshot_time"]) for r in got] == [(None, None)]


def test_duplicate_labels_all_kept_with_their_columns(pit: PitRunner) -> None:
    labels = [(1, t("02:30:00"), "dup"), (1, t("02:30:00"), "dup"), (1, t("02:30:00"), "other")]
    snaps = [(1, t("02:00:00"), 20, "b")]
    got = pit.run(labels, LABELS, {"s": (snaps, SNAPS)})
    assert [(r["y"], r["s__v"]) for r in got] == [("dup", 20), ("dup", 20), ("other", 20)]
    assert list(got[0]) == ["context_id", "label_time", "y", "s__v", "s__x", "s__snapshot_time"]


def test_values_come_from_one_row_nulls_are_not_filled(pit: PitRunner) -> None:
    snaps = [
        (2, t("01:00:00"), 100, "old x"),
        (2, t("02:00:00"), None, "new x"),
        (2, t("03:00:00"), 300, None),
    ]
    labels = [(2, t("02:30:00"), "mid"), (2, t("03:30:00"), "late")]
    got = pit.run(labels, LABELS, {"s": (snaps, SNAPS)})
    assert [(r["y"], r["s__v"], r["s__x"]) for r in got] == [
        ("late", 300, None),
        ("mid", None, "new x"),
    ]


def test_features_named_like_internal_columns_keep_their_values(pit: PitRunner) -> None:
    # The plans name their working columns _k0, _j0, _id, _t, _st, _w, _s, _f0, _fst, _row,
    # _rank...: a source whose features carry those names must still get its own values.
    names = ["_k0", "_j0", "_id", "_t", "_st", "_w", "_s", "_f0", "_f1", "_fst", "_row", "_rank"]
    schema = "context_id long, snapshot_time timestamp, " + ", ".join(f"{n} long" for n in names)
    snaps = [
        (1, t("01:00:00"), *range(100, 100 + len(names))),
        (1, t("02:00:00"), *range(200, 200 + len(names))),
    ]
    got = pit.run([(1, t("02:30:00"), "l")], LABELS, {"s": (snaps, schema)})
    assert [got[0][f"s__{n}"] for n in names] == list(range(200, 200 + len(names)))
    assert got[0]["s__snapshot_time"] == t("02:00:00")


def test_null_key_and_null_label_time_give_nulls(pit: PitRunner) -> None:
    labels = [(None, t("02:30:00"), "null key"), (1, None, "null time"), (1, t("02:30:00"), "ok")]
    snaps = [(1, t("02:00:00"), 20, "b"), (None, t("01:00:00"), 99, "null-key snapshot")]
    got = pit.run(labels, LABELS, {"s": (snaps, SNAPS)})
    assert [(r["y"], r["s__v"]) for r in got] == [
        ("null key", None),
        ("null time", None),
        ("ok", 20),
    ]


def test_two_sources_with_different_staleness(pit: PitRunner) -> None:
    labels = [(1, t("12:00:00"), "noon")]
    a = [(1, t("10:00:00"), 1, "a")]
    b = [(1, t("06:00:00"), 2, "b")]
    got = pit.run(
        labels,
        LABELS,
        {"a": (a, SNAPS), "b": (b, SNAPS)},
        max_staleness={"a": timedelta(hours=1), "b": timedelta(hours=6)},
    )
    assert [(r["a__v"], r["b__v"], r["b__snapshot_time"]) for r in got] == [
        (None, 2, t("06:00:00"))
    ]


def test_empty_source_gives_nulls(pit: PitRunner) -> None:
    labels = [(1, t("12:00:00"), "l"), (2, t("12:00:00"), "m")]
    got = pit.run(
        labels, LABELS, {"a": ([(1, t("10:00:00"), 1, "a")], SNAPS), "empty": ([], SNAPS)}
    )
    assert [(r["y"], r["a__v"], r["empty__v"], r["empty__snapshot_time"]) for r in got] == [
        ("l", 1, None, None),
        ("m", None, None, None),
    ]


def test_composite_keys(pit: PitRunner) -> None:
    labels_schema = "member long, device string, label_time timestamp, y string"
    snaps_schema = "member long, device string, snapshot_time timestamp, v long"
    labels = [
        (1, "tv", t("05:00:00"), "1/tv"),
        (1, "web", t("05:00:00"), "1/web"),
        (2, "tv", t("05:00:00"), "2/tv"),
    ]
    snaps = [
        (1, "tv", t("01:00:00"), 11),
        (1, "web", t("02:00:00"), 12),
        (2, "web", t("03:00:00"), 22),
    ]
    got = pit.run(labels, labels_schema, {"s": (snaps, snaps_schema)}, entity=["member", "device"])
    assert [(r["y"], r["s__v"]) for r in got] == [("1/tv", 11), ("1/web", 12), ("2/tv", None)]


# Keys 293 and 684 share a bucket of the Spark join's presort (19 bits of the key hash), so
# there their rows are interleaved by time until the exact sort; checked by
# test_the_shared_bucket_keys_really_share_one.
SAME_BUCKET = (293, 684)


def test_keys_sharing_a_presort_bucket_stay_apart(pit: PitRunner) -> None:
    a, b = SAME_BUCKET
    labels = [
        (a, t("02:30:00"), "a at 02:30"),
        (b, t("03:30:00"), "b at 03:30"),
        (a, t("04:30:00"), "a at 04:30"),
        (b, t("01:30:00"), "b at 01:30"),
    ]
    snaps = [
        (a, t("01:00:00"), 1, "a at 01"),
        (b, t("02:00:00"), 2, "b at 02"),
        (a, t("03:00:00"), 3, "a at 03"),
        (b, t("04:00:00"), 4, "b at 04"),
    ]
    got = pit.run(labels, LABELS, {"s": (snaps, SNAPS)})
    # Each label sees only its own key's snapshots, never the other key's later one.
    assert [(r["y"], r["s__v"]) for r in got] == [
        ("a at 02:30", 1),
        ("a at 04:30", 3),
        ("b at 01:30", None),
        ("b at 03:30", 2),
    ]


def test_the_shared_bucket_keys_really_share_one(spark) -> None:  # type: ignore[no-untyped-def]
    from timetravel.asof.spark_sweep import _bucket

    frame = spark.createDataFrame([(k,) for k in SAME_BUCKET], "context_id long")
    buckets = {r[0] for r in frame.select(_bucket(["context_id"])).collect()}
    assert len(buckets) == 1


def test_rows_microseconds_apart_are_ordered_exactly(pit: PitRunner) -> None:
    # All within 20 ms (the Spark join's presort orders time only to 33 ms), given newest
    # first: only the exact order can tell them apart.
    def at(micros: int) -> str:
        return t(f"12:00:00.{micros:06d}")

    snaps = [(1, at(20_000), 3, "c"), (1, at(1), 2, "b"), (1, at(0), 1, "a")]
    labels = [
        (1, at(20_000), "at 20000 us"),
        (1, at(19_999), "at 19999 us"),
        (1, at(1), "at 1 us"),
        (1, at(0), "at 0 us"),
    ]
    got = pit.run(labels, LABELS, {"s": (snaps, SNAPS)})
    assert [(r["y"], r["s__v"]) for r in got] == [
        ("at 0 us", 1),
        ("at 1 us", 2),
        ("at 19999 us", 2),
        ("at 20000 us", 3),
    ]
    # Equal snapshot times, written a microsecond apart, the newest write given first.
    written = [
        (1, t("03:00:00"), 2, "newest", t("09:00:00.000002")),
        (1, t("03:00:00"), 1, "newer", t("09:00:00.000001")),
        (1, t("03:00:00"), 0, "oldest", t("09:00:00")),
    ]
    got = one_label_with_written_time(pit, written)
    assert [(r["s__v"], r["s__x"]) for r in got] == [(2, "newest")]


def test_bad_input_is_named(pit: PitRunner) -> None:
    with pytest.raises(AsOfError, match=r"labels lacks column\(s\) \['label_time'\]"):
        pit.run([(1, "x")], "context_id long, y string", {"s": ([], SNAPS)})
    with pytest.raises(AsOfError, match=r"column 'label_time' must be a timestamp; it is string"):
        pit.run(
            [(1, "2026-01-01", "y")],
            "context_id long, label_time string, y string",
            {"s": ([], SNAPS)},
        )
    with pytest.raises(
        AsOfError,
        match=r"key column 'context_id' is bigint in the labels but "
        r"string in source 's'",
    ):
        pit.run([], LABELS, {"s": ([], "context_id string, snapshot_time timestamp, v long")})
    with pytest.raises(AsOfError, match=r"max_staleness names unknown source\(s\) \['b'\]"):
        pit.run([], LABELS, {"s": ([], SNAPS)}, max_staleness={"b": timedelta(1)})
    with pytest.raises(AsOfError, match="no sources given"):
        pit.run([], LABELS, {})


@pytest.mark.parametrize("seed", range(6))
def test_randomized_against_brute_force(pit: PitRunner, seed: int) -> None:
    rng = random.Random(seed)

    def instant() -> str:
        return t(f"{rng.randrange(0, 3):02d}:{rng.choice([0, 15, 30, 45]):02d}:00")

    def maybe(value):  # type: ignore[no-untyped-def]
        return None if rng.random() < 0.15 else value

    labels = [(rng.randrange(0, 6), instant(), f"l{i}") for i in range(60)]
    labels += labels[:5]  # duplicates
    sources = {}
    for name in ("a", "b"):
        # Distinct written times: the reference must have one right answer per tie.
        written = rng.sample(range(600), 40)
        sources[name] = [
            (
                rng.randrange(0, 5),
                instant(),
                maybe(rng.randrange(100)),
                maybe(rng.choice("pqrs")),
                t(f"{10 + w // 60}:{w % 60:02d}:00"),
            )
            for w in written[: rng.randrange(0, 40)]
        ]
    schema = SNAPS + ", written_at timestamp"
    staleness = {"a": timedelta(minutes=rng.choice([0, 15, 45, 120])), "b": timedelta(hours=3)}
    got = pit.run(
        labels,
        LABELS,
        {n: (rows, schema) for n, rows in sources.items()},
        written_time="written_at",
        max_staleness=staleness,
    )
    expected = sorted(_brute_force(labels, sources, staleness), key=sort_key)
    assert got == expected


def _brute_force(labels, sources, staleness):  # type: ignore[no-untyped-def]
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text)

    for key, at, y in labels:
        row = {"context_id": key, "label_time": at, "y": y}
        for name, snaps in sources.items():
            candidates = [s for s in snaps if s[0] == key and parse(s[1]) <= parse(at)]
            chosen = max(candidates, key=lambda s: (parse(s[1]), parse(s[4])), default=None)
            if chosen is not None and parse(at) - parse(chosen[1]) > staleness[name]:
                chosen = None
            row[f"{name}__v"] = chosen[2] if chosen else None
            row[f"{name}__x"] = chosen[3] if chosen else None
            row[f"{name}__snapshot_time"] = chosen[1] if chosen else None
        yield row


def test_the_spark_engine_here_runs_generated_code(spark) -> None:  # type: ignore[no-untyped-def]
    """The test profile turns Spark's generated code off; this suite's Spark engine runs the
    join with it on, as in production: its executed plan has whole-stage code generation
    stages (the ``*(n)`` marks), and a join run outside the engine has none."""
    import re

    from timetravel.asof.spark import point_in_time_join

    def generated_stages(plan: str) -> int:
        return len(re.findall(r"\*\(\d+\) ", plan))

    runner = PitRunner("spark", spark)
    labels, snaps = [(1, t("02:00:00"), "y")], [(1, t("01:00:00"), 10, "a")]
    assert runner.run(labels, LABELS, {"s": (snaps, SNAPS)})[0]["s__v"] == 10
    assert generated_stages(runner.spark_plans[-1]) > 0

    plans: list[str] = []
    _collect(
        point_in_time_join(
            runner.frame(labels, LABELS), {"s": runner.frame(snaps, SNAPS)}, entity="context_id"
        ),
        plans=plans,
    )
    assert generated_stages(plans[-1]) == 0


def test_the_band_engine_here_runs_shuffled_joins(spark) -> None:  # type: ignore[no-untyped-def]
    """This suite's band engine runs the plan as large label sets get it, with sort-merge joins:
    its tiny inputs would otherwise be broadcast (that path: tests/asof/test_spark_band.py)."""
    runner = PitRunner("spark_band", spark)
    labels, snaps = [(1, t("02:00:00"), "y")], [(1, t("01:00:00"), 10, "a")]
    assert runner.run(labels, LABELS, {"s": (snaps, SNAPS)})[0]["s__v"] == 10
    plan = runner.spark_plans[-1]
    assert "SortMergeJoin" in plan and "BroadcastHashJoin" not in plan, plan
