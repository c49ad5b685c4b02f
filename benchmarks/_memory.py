"""Peak resident memory of a process (Linux /proc), resettable so each engine gets its own peak.

Used by pit_join.py (our Python driver and Spark's JVM) and feast_join.py (Feast's), so it
must stay importable without timetravel or any third-party package.
"""

from __future__ import annotations

import os


def reset_peak(pid: int | None = None) -> None:
    """Reset the process's peak RSS to its current RSS (``5`` to clear_refs; Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid or os.getpid()}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux, or not allowed: the peak then covers the process lifetime
        pass


def peak_mb(pid: int | None = None) -> int | None:
    """The process's peak RSS (VmHWM) in MiB since start or the last ``reset_peak``."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


def spark_jvm_pid(spark: object) -> int:
    """The pid of a local SparkSession's JVM (driver and, in local mode, executors)."""
    return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # type: ignore[attr-defined]
