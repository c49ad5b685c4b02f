"""JVM options for the short-lived JVMs the tests start in subprocesses.

spark-submit jobs, CLI commands, the notebook's kernel and the standalone cluster live for
seconds to a minute, too short for HotSpot's C2 compiler to pay back the CPU it burns; on two
shared cores that CPU is what the other test worker waits for. C1 only cut a spark-submit
test from 27 to 18 CPU seconds, the notebook from 161 to 122 and the cluster test from 199
to 151. The xdist workers' own JVMs live for the whole run: C1 only made them about 25%
slower, but C2 with its default thresholds still spent more CPU compiling than they spent on
tasks, compiling code a test runs only a few thousand times. With ~10x the thresholds (C2
left to the truly hot code) a concurrency, profile and selection subset went from 272 s wall
and 490 CPU s to 246 s and 436 CPU s (and 365 -> 330 CPU s on another subset).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

QUICK_JVM = "-XX:TieredStopAtLevel=1"
PATIENT_C2 = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=20000 "
    "-XX:Tier4CompileThreshold=60000 -XX:Tier4BackEdgeThreshold=400000"
)
# Read by bin/spark-class for the driver JVMs of spark-submit and of pyspark's own launcher,
# and for the standalone master and worker daemons.
_VARIABLES = ("SPARK_SUBMIT_OPTS", "SPARK_DAEMON_JAVA_OPTS")


def prefer_quick_jvms() -> None:
    """Start subprocess JVMs with C1 only, unless the caller's environment says otherwise."""
    for name in _VARIABLES:
        os.environ.setdefault(name, QUICK_JVM)


@contextmanager
def long_lived_jvm() -> Iterator[None]:
    """Launch a JVM in this block with C2, held back for hot code (the test run's own
    SparkSession).

    Only what :func:`prefer_quick_jvms` put there is replaced: options the caller's
    environment set itself reach this JVM unchanged.
    """
    ours = [name for name in _VARIABLES if os.environ.get(name) == QUICK_JVM]
    for name in ours:
        os.environ[name] = PATIENT_C2
    try:
        yield
    finally:
        os.environ.update(dict.fromkeys(ours, QUICK_JVM))
