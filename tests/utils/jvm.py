"""JVM options for the JVMs the tests start, and the class-data archive they share.

spark-submit jobs, CLI commands, the notebook's kernel and the standalone cluster live for
seconds to a minute, too short for HotSpot's C2 compiler to pay back the CPU it burns; on two
shared cores that CPU is what the other test worker waits for. C1 only cut a spark-submit
test from 27 to 18 CPU seconds, the notebook from 161 to 122 and the cluster test from 199
to 151. The xdist workers' own JVMs live for the whole run: C1 only made them about 25%
slower, but C2 with its default thresholds still spent more CPU compiling than they spent on
tasks, compiling code a test runs only a few thousand times. With ~10x the thresholds (C2
left to the truly hot code) a concurrency, profile and selection subset went from 272 s wall
and 490 CPU s to 246 s and 436 CPU s (and 365 -> 330 CPU s on another subset). They also run
the parallel collector instead of G1, whose write barriers and refinement threads cost more
than its short pauses are worth to a test: the snapshot module alone, two runs each, went from
163-167 s wall and 226-239 CPU s to 150-159 s and 203-216 CPU s. (Measured and not kept: 3x
those thresholds, no change; C1 only, 207 s and 286 CPU s; the parallel collector in the
short-lived JVMs, no change.)

Every one of those JVMs also loads the same ~15,000 Spark, Delta and Hadoop classes from
jars. A dynamic class-data archive (JDK 13+, ``-XX:ArchiveClassesAtExit``), written once per
machine by a JVM that ran :mod:`tests.utils.jvm_warmup`, lets them map those classes already
parsed and verified: a small Delta job under spark-submit went from 19-20 s wall and 24-25
CPU s to 13.6-14.0 s and 17-18 CPU s, the same job in a pyspark-launched JVM from 19.5 s and
24 CPU s to 11.0 s and 14 CPU s (15,449 classes from the archive, 747 from jars). The
archive is only valid for the JDK, Spark and jars it was written with, so its file name
carries their digest; a JVM that cannot use it starts as before (its warning is silenced: it
would land on the CLI's stdout).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import PIPE, STDOUT

from timetravel.locks import exclusive_lock

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE_DIR = ROOT / ".cache" / "jvm"
TEST_PROFILE = ROOT / "conf" / "test.yaml"

QUICK_JVM = "-XX:TieredStopAtLevel=1"
LONG_LIVED_JVM = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=20000 "
    "-XX:Tier4CompileThreshold=60000 -XX:Tier4BackEdgeThreshold=400000 -XX:+UseParallelGC"
)
# Read by bin/spark-class for the driver JVMs of spark-submit and of pyspark's own launcher,
# and for the standalone master and worker daemons.
_VARIABLES = ("SPARK_SUBMIT_OPTS", "SPARK_DAEMON_JAVA_OPTS")
_LOG_LINE = re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d ")  # log4j's default layout


def _java() -> Path | None:
    """The java bin/spark-class runs: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def _jars_dir() -> Path:
    from timetravel.config import load_config

    return ROOT / load_config(TEST_PROFILE).spark.jars_dir


def class_archive() -> Path | None:
    """Where this machine's archive lives: named by a digest of the JDK, Spark's jars and our
    cached jars (a class path the archive was not written for cannot use it). None without
    java or cached jars."""
    from tests.utils.standalone import spark_home
    from timetravel.runtime.jars import cached_jars

    java, jars = _java(), cached_jars(_jars_dir())
    if java is None or jars is None:
        return None
    digest = hashlib.sha256()
    for path in [java, *sorted((spark_home() / "jars").glob("*.jar")), *jars]:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return ARCHIVE_DIR / f"spark-classes-{digest.hexdigest()[:16]}.jsa"


def ensure_class_archive() -> Path | None:
    """Write the archive if this machine has none yet (about a minute, once); its path, or
    None if it could not be written (the tests then run without it).

    One writer at a time: a second caller (``make jvm-archive`` beside the test run's own
    background start) waits for the first, then finds its archive.
    """
    archive = class_archive()
    if archive is None or archive.is_file():
        return archive
    ARCHIVE_DIR.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(ARCHIVE_DIR / "write.lock"):
        return archive if archive.is_file() else _write_archive(archive)


def start_class_archive() -> subprocess.Popen[bytes] | None:
    """Start :func:`ensure_class_archive` in the background if this machine has no archive
    yet; its output goes to ``.cache/jvm/write.log``.

    The test run does not wait for it: each JVM's options name the archive's path, so the
    JVMs started meanwhile run without it and the ones started after it lands map it (the
    file appears whole, by rename). On a fresh machine that lets the tests start about 30 s
    earlier, on the core the archive's single-threaded dump leaves idle.
    """
    archive = class_archive()
    if archive is None or archive.is_file():
        return None
    ARCHIVE_DIR.mkdir(parents=True, exist_ok=True)
    with open(ARCHIVE_DIR / "write.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.utils.jvm"], cwd=ROOT, stdout=log, stderr=STDOUT
        )


def _write_archive(archive: Path) -> Path | None:
    from tests.utils.standalone import spark_home
    from timetravel.runtime.jars import spark_submit_args

    print(f"tests: writing the JVM class archive {archive.name} (once per machine)", flush=True)
    partial = archive.with_suffix(f".{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix="jvm-warmup-") as scratch:
        env = os.environ | {
            "SPARK_SUBMIT_OPTS": f"{QUICK_JVM} -XX:ArchiveClassesAtExit={partial} -Xlog:cds*=off",
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": str(ROOT),
            "TIMETRAVEL_WAREHOUSE": scratch,
            "TMPDIR": scratch,
        }
        command = [
            str(spark_home() / "bin" / "spark-submit"),
            *spark_submit_args(_jars_dir()),
            str(ROOT / "tests" / "utils" / "jvm_warmup.py"),
            str(TEST_PROFILE),
        ]
        try:
            done = subprocess.run(
                command, env=env, stdout=PIPE, stderr=STDOUT, text=True, timeout=900
            )
            # The Python side's traceback comes out on stdout, among Spark's log lines.
            said = [line for line in done.stdout.splitlines() if not _LOG_LINE.match(line)]
            failed, tail = done.returncode != 0, said[-5:]
        except subprocess.TimeoutExpired:
            failed, tail = True, ["the warm-up job took more than 900 s"]
    if failed or not partial.is_file():
        partial.unlink(missing_ok=True)
        print("tests: no JVM class archive, JVMs start without it:", *tail, sep="\n  ")
        return None
    for old in ARCHIVE_DIR.glob("spark-classes-*.jsa"):
        old.unlink()
    partial.replace(archive)
    return archive


def _with_archive(options: str) -> str:
    archive = class_archive()
    # bin/spark-class splits these variables on whitespace: a path with a space cannot go in.
    if archive is None or any(c.isspace() for c in str(archive)):
        return options
    return f"{options} -XX:SharedArchiveFile={archive} -Xlog:cds*=off"


def quick_jvm_options() -> str:
    """C1 only, and the class archive (once it is written): for JVMs that live seconds."""
    return _with_archive(QUICK_JVM)


def prefer_quick_jvms() -> None:
    """Start subprocess JVMs with :func:`quick_jvm_options`, unless the caller's environment
    says otherwise."""
    options = quick_jvm_options()
    for name in _VARIABLES:
        os.environ.setdefault(name, options)


@contextmanager
def long_lived_jvm() -> Iterator[None]:
    """Launch a JVM in this block with C2, held back for hot code (the test run's own
    SparkSession), and the class archive.

    Only what :func:`prefer_quick_jvms` put there is replaced: options the caller's
    environment set itself reach this JVM unchanged.
    """
    quick = quick_jvm_options()
    ours = [name for name in _VARIABLES if os.environ.get(name) == quick]
    for name in ours:
        os.environ[name] = _with_archive(LONG_LIVED_JVM)
    try:
        yield
    finally:
        os.environ.update(dict.fromkeys(ours, quick))


if __name__ == "__main__":
    ensure_class_archive()
