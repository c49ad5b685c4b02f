"""The options the tests start their JVMs with (tests/utils/jvm.py) do what they claim."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.utils.jvm import _java, ensure_class_archive, quick_jvm_options
from tests.utils.standalone import spark_home

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def archive() -> Path:
    written = ensure_class_archive()
    assert written is not None and written.is_file(), "the class archive could not be written"
    return written


def test_spark_submit_maps_sparks_classes_from_the_archive(archive: Path, tmp_path: Path) -> None:
    loads = tmp_path / "class-load.log"
    options = f"{quick_jvm_options()} -Xlog:class+load=info:file={loads}"
    assert f"-XX:SharedArchiveFile={archive}" in options
    done = subprocess.run(
        [str(spark_home() / "bin" / "spark-submit"), "--version"],
        env={**os.environ, "SPARK_SUBMIT_OPTS": options},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = loads.read_text().splitlines()
    submit = [line for line in lines if " org.apache.spark.deploy.SparkSubmit " in line]
    assert submit and submit[0].endswith("source: shared objects file (top)"), submit
    from_archive = sum(line.endswith("(top)") for line in lines)
    assert from_archive > 1000, f"only {from_archive} of {len(lines)} classes came from it"


def test_a_jvm_that_cannot_use_the_archive_prints_nothing_on_stdout(archive: Path) -> None:
    # A class path the archive was not written for: the JVM starts without it, and says
    # nothing where a CLI command's output goes.
    java = _java()
    assert java is not None
    done = subprocess.run(
        [str(java), *quick_jvm_options().split(), "-cp", str(archive.parent), "-version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "openjdk" in done.stderr.lower()
