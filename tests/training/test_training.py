"""Training sets through the facade: hand-computed values on both engines, manifests,
bit-for-bit rebuilds after later writes, and bad input."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tests.conftest import copy_warehouse, fresh_warehouse
from tests.utils.facts import PROFILE, RATINGS, write_facts
from timetravel import TimeTravel
from timetravel.config import Config
from timetravel.errors import FeatureError, LabelError, ManifestError, TimeTravelError
from timetravel.training.job import read_labels
from timetravel.training.label_location import resolve_labels
from timetravel.training.manifest import Manifest
from timetravel.warehouse.layout import facts_table
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

T = "2026-06-10T12:00:00Z"
FEATURES = ["ratings_count", "thumbs_up_share", "tenure_days", "plan"]
ENGINES = ["spark", "duckdb"]


@pytest.fixture(scope="module")
def written(  # type: ignore[no-untyped-def]
    spark, test_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Two runs of ratings and profiles, written once to cover every case of the contract:
    the warehouse folder."""
    config = fresh_warehouse(test_config, "local", tmp_path_factory.mktemp("written"))
    store = DeltaStore(spark, config)
    write_facts(
        store,
        "ratings",
        RATINGS,
        [
            (1, "2026-06-01T06:00:00", 1, 1),
            (3, "2026-06-05T06:00:00", 0, 1),  # tie at 06-05: this one written first
            (5, "2026-05-01T06:00:00", 4, 0),  # old: only without a staleness bound
            (7, "2026-06-01T06:00:00", 0, 5),
        ],
        run_id="r1",
        written_at="2026-06-01T07:00:00Z",
    )
    write_facts(
        store,
        "ratings",
        RATINGS,
        [
            (1, "2026-06-08T06:00:00", 3, 1),
            (2, "2026-06-10T12:00:00", 2, 0),  # exactly at the label time: visible
            (3, "2026-06-05T06:00:00", 1, 0),  # tie at 06-05, written later: wins
            (4, "2026-06-11T06:00:00", 5, 5),  # after the label: invisible
            (7, "2026-06-08T06:00:00", 2, None),  # chosen row with a null: not stitched
        ],
        run_id="r2",
        written_at="2026-06-08T07:00:00Z",
    )
    write_facts(
        store,
        "member-profile",
        PROFILE,
        [
            (1, "2026-06-08T06:00:00", "basic", "2026-05-31T13:00:00", "active"),
            (2, "2026-06-08T06:00:00", "premium", "2025-06-10T12:00:00", "active"),
        ],
        run_id="r2",
        written_at="2026-06-08T07:00:00Z",
    )
    return Path(config.warehouse.root)


@pytest.fixture
def warehouse(spark, local_config: Config, written: Path) -> TimeTravel:  # type: ignore[no-untyped-def]
    """A copy of that warehouse as this test's own: the rebuild test writes to it, and every
    test starts from the same two runs."""
    copy_warehouse(written, local_config)
    return TimeTravel(local_config, spark=spark)


def with_query(warehouse: TimeTravel, **settings: object) -> TimeTravel:
    """The same warehouse and session, with these ``query`` settings changed."""
    query = warehouse.config.query.model_copy(update=settings)
    return TimeTravel(warehouse.config.model_copy(update={"query": query}), spark=warehouse.spark)


def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": [1, 1, 2, 3, 4, 5, 6, 7, 8],
            "label_time": [T] * 8 + [None],
            "y": [1, 1, 0, 1, 0, 1, 0, 1, 0],
        }
    )


def by_row(result) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    rows = result.to_arrow().to_pylist()
    return sorted(rows, key=lambda r: (r["member_id"], r.get("y", 0), str(r["label_time"])))


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_computed_training_set(warehouse: TimeTravel, engine: str) -> None:
    result = warehouse.training_set(
        labels(), features=FEATURES, engine=engine, max_staleness={"ratings": timedelta(days=14)}
    )
    rows = by_row(result)
    got = {
        (r["member_id"], i): (
            r["ratings_count"],
            r["thumbs_up_share"],
            r["ratings__run_id"],
            r["tenure_days"],
            r["plan"],
        )
        for i, r in enumerate(rows)
    }
    assert list(got.values()) == [
        (4, 0.75, "r2", 9, "basic"),  # 06-08 snapshot; tenure from member_since to t
        (4, 0.75, "r2", 9, "basic"),  # duplicate label kept
        (2, 1.0, "r2", 365, "premium"),  # snapshot exactly at t
        (1, 1.0, "r2", None, None),  # tie: the later-written row
        (None, None, None, None, None),  # only a snapshot after t
        (None, None, None, None, None),  # 40 days old > 14 days bound
        (None, None, None, None, None),  # no history
        (2, 1.0, "r2", None, None),  # null thumbs_down stays null: 2 ratings, not 7
        (None, None, None, None, None),  # null label time
    ]
    assert rows[0]["ratings__snapshot_time"] == datetime(2026, 6, 8, 6, tzinfo=UTC)
    assert [r["y"] for r in rows] == [1, 1, 0, 1, 0, 1, 0, 1, 0]
    manifest = result.manifest
    assert manifest.engine == engine and manifest.rows == 9 and manifest.labels.rows == 9
    # version 0 creates each table; then one commit per run
    assert {s: p.version for s, p in manifest.sources.items()} == {
        "ratings": 2,
        "member-profile": 1,
    }
    assert manifest.coverage["ratings_count"] == pytest.approx(5 / 9)
    assert manifest.max_staleness_s == {"ratings": 14 * 86400.0, "member-profile": None}


def test_both_engines_build_identical_training_sets(warehouse: TimeTravel) -> None:
    spark_set = warehouse.training_set(labels(), features=FEATURES, engine="spark")
    duck_set = warehouse.training_set(labels(), features=FEATURES, engine="duckdb")
    assert spark_set.to_arrow().schema == duck_set.to_arrow().schema
    assert by_row(spark_set) == by_row(duck_set)
    assert spark_set.manifest.labels.fingerprint == duck_set.manifest.labels.fingerprint
    assert spark_set.manifest.id == duck_set.manifest.id  # same inputs, same id
    # Without the staleness bound member 5's old snapshot counts: the id changes too.
    unbounded = warehouse.training_set(
        labels(), features=FEATURES, engine="duckdb", max_staleness=timedelta(days=60)
    )
    assert unbounded.manifest.id != duck_set.manifest.id


@pytest.mark.parametrize("engine", ENGINES)
def test_rebuild_is_bit_for_bit_after_new_runs_backfills_and_deletes(
    warehouse: TimeTravel, engine: str, tmp_path: Path
) -> None:
    original = warehouse.training_set(labels(), features=FEATURES, engine=engine)
    original.write(str(tmp_path / "ts"))
    before = by_row(original)
    store = warehouse.store
    # A new run, a backfill of an old run (older snapshot times) and a correction (delete).
    write_facts(
        store,
        "ratings",
        RATINGS,
        [(1, "2026-06-09T06:00:00", 9, 0)],
        run_id="r3",
        written_at="2026-06-09T07:00:00Z",
    )
    write_facts(
        store,
        "ratings",
        RATINGS,
        [(6, "2026-06-02T06:00:00", 1, 1)],
        run_id="r1",
        written_at="2026-06-12T07:00:00Z",
    )
    store.spark.sql(f"DELETE FROM delta.`{store.path(facts_table('ratings'))}` WHERE member_id = 2")
    fresh = by_row(warehouse.training_set(labels(), features=FEATURES, engine=engine))
    assert fresh != before  # the warehouse really changed under the labels
    rebuilt = warehouse.rebuild(tmp_path / "ts")
    assert by_row(rebuilt) == before
    assert rebuilt.to_arrow().schema == original.to_arrow().schema
    assert rebuilt.manifest.id == original.manifest.id
    # ...and on the other engine, from the same manifest.
    other = "duckdb" if engine == "spark" else "spark"
    assert by_row(warehouse.rebuild(tmp_path / "ts", engine=other)) == before  # type: ignore[arg-type]


def test_written_layout_and_manifest(warehouse: TimeTravel, tmp_path: Path) -> None:
    out = tmp_path / "ts"
    manifest = warehouse.training_set(labels(), features=["plan"], engine="duckdb").write(
        str(out), fmt="parquet"
    )
    on_disk = Manifest.from_json((out / "manifest.json").read_text())
    assert on_disk == manifest and on_disk.output_format == "parquet"
    assert pd.read_parquet(out / "data").shape == (9, 3 + 1 + 2)
    assert on_disk.labels.uri == str(out / "labels")
    with pytest.raises(Exception, match="already exists .* overwrite"):
        warehouse.training_set(labels(), features=["plan"], engine="duckdb").write(str(out))
    with pytest.raises(ManifestError, match="invalid manifest: features"):
        Manifest.from_json({**json.loads(on_disk.to_json()), "features": "plan"})
    with pytest.raises(ManifestError, match="not JSON"):
        Manifest.from_json("{nope")


@pytest.mark.parametrize("join_plan", ["band", "sweep"])
def test_a_named_spark_join_plan_skips_the_sample_and_gives_the_same_rows(
    warehouse: TimeTravel, join_plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = {"ratings": timedelta(days=14)}
    auto = by_row(
        warehouse.training_set(labels(), features=FEATURES, engine="spark", max_staleness=bound)
    )

    def sampled(*args: object, **kwargs: object) -> None:
        raise AssertionError("auto's key sample ran though query.spark_join_plan names a plan")

    monkeypatch.setattr("timetravel.asof.spark.choose_plan", sampled)
    result = with_query(warehouse, spark_join_plan=join_plan).training_set(
        labels(), features=FEATURES, engine="spark", max_staleness=bound
    )
    assert by_row(result) == auto


def test_features_as_of_and_auto_engine(warehouse: TimeTravel) -> None:
    result = warehouse.features_as_of("2026-06-09T00:00:00Z", features=["ratings_count"])
    assert result.engine == "duckdb"  # a handful of rows: embedded
    rows = {r["member_id"]: r["ratings_count"] for r in result.to_arrow().to_pylist()}
    assert rows == {1: 4, 3: 1, 5: 4, 7: 2}  # member 2's and 4's snapshots are later
    spark_tt = with_query(warehouse, embedded_max_rows=3)
    assert spark_tt.training_set(labels(), features=["plan"]).engine == "spark"
    chosen = warehouse.features_as_of(
        "2026-06-09T00:00:00Z", contexts=[1, 6], features=["ratings_count"]
    )
    assert [(r["member_id"], r["ratings_count"]) for r in chosen.to_arrow().to_pylist()] == [
        (1, 4),
        (6, None),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_labels_and_features_get_clear_errors(warehouse: TimeTravel, engine: str) -> None:
    build = lambda frame, **kw: warehouse.training_set(  # noqa: E731
        frame, features=kw.pop("features", ["plan"]), engine=engine, **kw
    )
    with pytest.raises(
        LabelError, match=r"lack column\(s\) \['label_time'\]; they have 1 other column"
    ):
        build(pd.DataFrame({"member_id": [1]}))
    with pytest.raises(LabelError, match="'member_id' must hold integers"):
        build(pd.DataFrame({"member_id": ["a"], "label_time": [T]}))
    with pytest.raises(LabelError, match="'label_time', row 1: not an ISO-8601 instant"):
        build(pd.DataFrame({"member_id": [1, 2], "label_time": [T, "yesterday"]}))
    for edge in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "1899-12-31T23:00:00Z"):
        with pytest.raises(
            LabelError,
            match="row 1: (not an ISO-8601 instant between|an "
            "instant outside) 1900-01-01 and 2200-01-01",
        ):
            build(pd.DataFrame({"member_id": [1, 2], "label_time": [T, edge]}))
    with pytest.raises(LabelError, match="row 0: an instant outside 1900"):
        build(
            pa.table(
                {
                    "member_id": [1],
                    "label_time": pa.array(
                        [datetime(2200, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")
                    ),
                }
            )
        )
    for key in (2**63, 2**64, -(2**63) - 1):
        with pytest.raises(LabelError, match="an integer outside the signed 64-bit range"):
            build([{"member_id": key, "label_time": T}])
    with pytest.raises(LabelError, match="'member_id' holds integers outside the range"):
        build(pa.table({"member_id": pa.array([2**63], pa.uint64()), "label_time": [T]}))
    with pytest.raises(LabelError, match="not a table of consistent values"):
        build([{"member_id": 1, "label_time": T}, {"member_id": "x", "label_time": T}])
    with pytest.raises(LabelError, match="must be a timestamp or ISO-8601 text; it is double"):
        build(pd.DataFrame({"member_id": [1], "label_time": [1.5]}))
    with pytest.raises(FeatureError, match=r"unknown feature\(s\) \['nope'\]; known: .*plan"):
        build(labels(), features=["plan", "nope"])
    with pytest.raises(LabelError, match=r"collide with output columns"):
        build(pd.DataFrame({"member_id": [1], "label_time": [T], "plan": ["x"]}))
    with pytest.raises(FeatureError, match="source 'viewing-history' has no fact table"):
        build(labels(), features=["plays_7d"])


@pytest.fixture
def los_angeles():  # type: ignore[no-untyped-def]
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/Los_Angeles"
    time.tzset()
    yield
    if saved is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.mark.parametrize("engine", ENGINES)
def test_naive_label_times_are_utc_under_a_non_utc_tz(
    warehouse: TimeTravel, engine: str, los_angeles: None
) -> None:
    assert time.strftime("%Z") in ("PST", "PDT")
    explicit = pd.DataFrame(
        {
            "member_id": [2, 2],
            "label_time": pd.to_datetime(
                ["2026-06-10T12:00:00Z", "2026-06-10T11:59:59Z"], utc=True
            ),
            "y": [0, 1],
        }
    )
    naive = [
        pd.DataFrame(
            {
                "member_id": [2, 2],
                "label_time": pd.to_datetime(["2026-06-10 12:00:00", "2026-06-10 11:59:59"]),
                "y": [0, 1],
            }
        ),
        pd.DataFrame(
            {
                "member_id": [2, 2],
                "label_time": ["2026-06-10T12:00:00", "2026-06-10 11:59:59"],
                "y": [0, 1],
            }
        ),
        [
            {"member_id": 2, "label_time": datetime(2026, 6, 10, 12), "y": 0},
            {"member_id": 2, "label_time": datetime(2026, 6, 10, 11, 59, 59), "y": 1},
        ],
    ]
    expected = by_row(warehouse.training_set(explicit, features=["ratings_count"], engine=engine))
    # 12:00 UTC sees member 2's snapshot taken at exactly 12:00; one second earlier does not.
    assert [r["ratings_count"] for r in expected] == [2, None]
    for frame in naive:
        assert (
            by_row(warehouse.training_set(frame, features=["ratings_count"], engine=engine))
            == expected
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_label_files_that_fail_to_parse_are_not_echoed(
    warehouse: TimeTravel, tmp_path: Path, engine: str
) -> None:
    """What an API job's worker does with a labels_uri, in process: the error it would return
    names the problem and never the file's content."""
    files = {
        "notlabels.csv": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/false\n",
        "ragged.csv": "member_id,label_time\n1,2,SECRET-VALUE\n",
        "badtime.csv": "member_id,label_time\n1,SECRET-VALUE\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(TimeTravelError) as caught:
            location = resolve_labels(warehouse.config, str(tmp_path / name), roots=[str(tmp_path)])
            labels = read_labels(warehouse, location, engine)  # type: ignore[arg-type]
            warehouse.training_set(labels, features=["ratings_count"], engine=engine)  # type: ignore[arg-type]
        for leaked in ("root:x", "daemon", "/bin/bash", "SECRET-VALUE"):
            assert leaked not in str(caught.value), (name, str(caught.value))


def test_spark_labels_frame_and_label_files(warehouse: TimeTravel, tmp_path: Path) -> None:
    frame = warehouse.spark.createDataFrame(
        [(1, "2026-06-10T12:00:00Z", 1)], "member_id int, label_time string, y int"
    )
    on_spark = warehouse.training_set(frame, features=["ratings_count"], engine="spark")
    embedded = warehouse.training_set(frame, features=["ratings_count"], engine="duckdb")
    assert [r["ratings_count"] for r in by_row(on_spark)] == [4]
    assert by_row(on_spark) == by_row(embedded)
    table = pa.table({"member_id": [1], "label_time": ["2026-06-10T12:00:00Z"]})
    assert [
        r["ratings_count"]
        for r in by_row(warehouse.training_set(table, features=["ratings_count"], engine="duckdb"))
    ] == [4]


def test_point_lookups_equal_training_set_rows(warehouse: TimeTravel) -> None:
    """The lookup path (stats-pruned reads, one-row as-of rule) against the join, including
    the tie written in two commits, exact-time equality and the staleness bound."""
    instants = [
        "2026-06-05T06:00:00Z",
        "2026-06-05T05:59:59Z",
        T,
        "2026-06-11T06:00:00Z",
        "2026-06-30T00:00:00Z",
        "2026-04-01T00:00:00Z",
    ]
    labels = pd.DataFrame(
        [{"member_id": m, "label_time": t} for m in range(1, 9) for t in instants]
    )
    for staleness in (None, timedelta(days=3)):
        expected = (
            warehouse.training_set(
                labels, features=FEATURES, engine="duckdb", max_staleness=staleness
            )
            .to_arrow()
            .to_pylist()
        )
        for row in expected:
            got = warehouse.lookup(
                row["member_id"], row["label_time"], features=FEATURES, max_staleness=staleness
            )
            assert got["features"] == {f: row[f] for f in FEATURES}, row
            for source, provenance in got["sources"].items():
                alias = source.replace("-", "_")
                assert provenance["snapshot_time"] == row[f"{alias}__snapshot_time"]
                assert provenance["run_id"] == row[f"{alias}__run_id"]


def test_cli_and_job_build_and_rebuild_from_label_files(
    warehouse: TimeTravel, tmp_path: Path
) -> None:
    """CSV through the CLI (Spark), Parquet through the spark-submit job script (DuckDB),
    Delta through the job's library function."""
    import subprocess
    import sys

    import yaml
    from typer.testing import CliRunner

    from timetravel.cli import app
    from timetravel.training.job import build_training_set

    frame = labels().dropna()
    frame.to_csv(tmp_path / "labels.csv", index=False)
    frame.to_parquet(tmp_path / "labels.parquet")
    warehouse.spark.createDataFrame(frame).write.format("delta").save(str(tmp_path / "delta"))
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(warehouse.config.model_dump(mode="json", by_alias=True)))
    runner = CliRunner()
    out = tmp_path / "ts"
    result = runner.invoke(
        app,
        [
            "--conf",
            str(conf),
            "training-set",
            "--labels",
            str(tmp_path / "labels.csv"),
            "--out",
            str(out),
            "--features",
            "ratings_count,plan",
            "--max-staleness",
            "ratings=14d",
            "--engine",
            "spark",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "8 rows (8 labels) on spark" in result.output
    assert re.search(r"ratings_count\s+1\s+62\.5%", result.output)  # 5 of 8 rows have a snapshot
    again = runner.invoke(
        app,
        ["--conf", str(conf), "rebuild", "--manifest", str(out), "--out", str(tmp_path / "ts2")],
    )
    assert again.exit_code == 0, again.output
    assert pd.read_parquet(tmp_path / "ts2" / "labels").shape[0] == 8
    root = Path(__file__).resolve().parents[2]
    job = subprocess.run(
        [
            sys.executable,
            "jobs/build_training_set.py",
            "--conf",
            str(conf),
            "--labels",
            str(tmp_path / "labels.parquet"),
            "--out",
            str(tmp_path / "job"),
            "--features",
            "ratings_count,plan",
            "--engine",
            "duckdb",
            "--format",
            "parquet",
        ],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert job.returncode == 0, job.stderr
    assert "8 rows (8 labels) on duckdb" in job.stdout
    written = pd.read_parquet(tmp_path / "job" / "data").sort_values(["member_id", "y"])
    assert written["ratings_count"].tolist()[:2] == [4, 4]
    from_delta = build_training_set(
        warehouse,
        str(tmp_path / "delta"),
        str(tmp_path / "d"),
        features=["ratings_count"],
        engine="duckdb",
    )
    # No staleness bound here: member 5's 40-day-old snapshot counts too.
    assert from_delta.rows == 8 and from_delta.coverage["ratings_count"] == 6 / 8
    bad = subprocess.run(
        [
            sys.executable,
            "jobs/build_training_set.py",
            "--conf",
            str(conf),
            "--labels",
            str(tmp_path / "labels.csv"),
            "--out",
            str(tmp_path / "bad"),
            "--features",
            "nope",
        ],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert bad.returncode == 2 and "unknown feature(s) ['nope']" in bad.stderr
    assert "Traceback" not in bad.stderr
