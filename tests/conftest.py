"""Shared fixtures: one S3 API server and one SparkSession for the whole run."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.jvm import (
    TEST_PROFILE,
    long_lived_jvm,
    prefer_quick_jvms,
    start_class_archive,
)
from tests.utils.s3server import TEST_CREDENTIALS, MotoServer
from timetravel.config import Config, load_config

TEST_BUCKET = "timetravel-test"
# The longest modules first, so the two xdist workers finish together (`make test` runs
# `-n 2 --dist loadfile --no-loadscope-reorder`: modules are handed out in collection order).
# Measured with --durations=0 under `-n 2` (seconds, setup + call + teardown, 2026-12-01):
# snapshot 155, concurrent runs 76, notebook 64, training 62, as-of 59, Airflow 53, cli 49,
# runner 44, data faults 44, cluster 43, profile 40, truth 39, selection 37, browser 31,
# hardening 24, delta-rs 24, store 18, maintenance 17; the rest under 10.
LONGEST_FIRST = (
    "test_snapshot.py",
    "test_concurrent_runs.py",
    "test_notebooks.py",
    "test_training.py",
    "test_asof.py",
    "test_airflow.py",
    "test_cli.py",
    "test_runner.py",
    "test_data_faults.py",
    "test_cluster.py",
    "test_profile.py",
    "test_truth.py",
    "test_selection.py",
    "test_browser.py",
    "test_hardening.py",
    "test_deltars.py",
    "test_store.py",
    "test_maintenance.py",
)

prefer_quick_jvms()
_ARCHIVE_WRITER = pytest.StashKey[subprocess.Popen[bytes] | None]()


def pytest_sessionstart(session: pytest.Session) -> None:
    # Once per run (xdist's controller, or the only process): on a fresh machine the JVM
    # class archive is written beside the first tests instead of before them.
    if not hasattr(session.config, "workerinput"):
        session.config.stash[_ARCHIVE_WRITER] = start_class_archive()


def pytest_unconfigure(config: pytest.Config) -> None:
    writer = config.stash.get(_ARCHIVE_WRITER, None)
    if writer is not None and writer.poll() is None:
        print("\ntests: waiting for the JVM class archive (.cache/jvm/write.log)", flush=True)
        writer.wait()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a module is kept


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto in server mode on a free loopback port, with the test bucket; credentials in env."""
    saved = {k: os.environ.get(k) for k in [*TEST_CREDENTIALS, "TIMETRAVEL_S3_ENDPOINT"]}
    with MotoServer() as server:
        os.environ.update(TEST_CREDENTIALS)
        os.environ["TIMETRAVEL_S3_ENDPOINT"] = server.endpoint
        server.create_bucket(TEST_BUCKET)
        try:
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def test_config(s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """conf/test.yaml, pointed at this run's S3 server and a fresh local warehouse."""
    os.environ["TIMETRAVEL_WAREHOUSE"] = str(tmp_path_factory.mktemp("warehouse"))
    try:
        return load_config(TEST_PROFILE)
    finally:
        os.environ.pop("TIMETRAVEL_WAREHOUSE")


@pytest.fixture(scope="session")
def spark(test_config: Config):  # type: ignore[no-untyped-def]
    """The one SparkSession of the test run: local[2], 2 shuffle partitions, UI off."""
    from timetravel.runtime.spark import get_spark

    with long_lived_jvm():
        session = get_spark(test_config)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _with_root(config: Config, root: str) -> Config:
    return config.model_copy(
        update={"warehouse": config.warehouse.model_copy(update={"root": root})}
    )


def fresh_warehouse(config: Config, kind: str, folder: Path | None = None) -> Config:
    """``config`` with a new, empty warehouse: ``folder``/warehouse when ``kind`` is "local",
    a new s3a:// prefix on the test server when it is "s3"."""
    if kind == "local":
        assert folder is not None, "a local warehouse needs a folder"
        return _with_root(config, str(folder / "warehouse"))
    return _with_root(config, f"s3a://{TEST_BUCKET}/{uuid.uuid4().hex[:12]}")


def copy_warehouse(written: Path, config: Config) -> None:
    """Copy the local warehouse folder ``written`` (a module's tables, written once) to
    ``config``'s root, for one test to read or write. A folder copy is a whole warehouse:
    Delta tables and the runs index keep paths relative to their own folders."""
    shutil.copytree(written, config.warehouse.root)


@pytest.fixture
def local_config(test_config: Config, tmp_path: Path) -> Config:
    """The test profile with a fresh local warehouse folder."""
    return fresh_warehouse(test_config, "local", tmp_path)


@pytest.fixture
def s3_config(test_config: Config) -> Config:
    """The test profile with a fresh s3a:// warehouse prefix on the test server."""
    return fresh_warehouse(test_config, "s3")


# The two warehouses a storage test runs on; the s3 cases carry the s3 marker at collection,
# so `-m "not s3"` leaves them out.
WAREHOUSES = ["local", pytest.param("s3", marks=pytest.mark.s3)]


@pytest.fixture(scope="module", params=WAREHOUSES)
def module_warehouse(
    request: pytest.FixtureRequest, test_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Config:
    """Both warehouses, each fresh and shared by one module's tests: for tables that are
    written once and then only read."""
    return fresh_warehouse(test_config, request.param, tmp_path_factory.mktemp("module"))


@pytest.fixture(params=WAREHOUSES)
def warehouse_config(request: pytest.FixtureRequest) -> Config:
    """Both warehouses: the same test runs on local disk and on s3a:// (moto server)."""
    return request.getfixturevalue(f"{request.param}_config")
