"""One way to hold an exclusive lock between processes on one machine: ``flock`` of a file.

Used where processes of this machine must take turns: a local lease's read-check-write, the
one jar fetch per cache folder, and the tests' one JVM class-archive writer. POSIX only, as
Spark's local mode here is.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["exclusive_lock"]


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` of ``lock_file`` (created, with its folder, if missing)
    until the block ends; waits while another process holds it. Closing the file drops the
    lock, so a process that dies drops it too."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
