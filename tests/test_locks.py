"""The one inter-process lock: a second process waits while the first holds it (no Spark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from timetravel.locks import exclusive_lock

# Tries the lock without waiting: exit 0 if it got it, 1 if another process holds it.
_TRY = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(1)
"""


def _other_process_gets(lock_file: Path) -> bool:
    return subprocess.run([sys.executable, "-c", _TRY, str(lock_file)], check=False).returncode == 0


def test_another_process_waits_while_the_lock_is_held_and_gets_it_after(tmp_path: Path) -> None:
    lock_file = tmp_path / "deep" / "folder" / "x.lock"
    with exclusive_lock(lock_file):
        assert lock_file.is_file()  # created, with its folders
        assert not _other_process_gets(lock_file)
    assert _other_process_gets(lock_file)


def test_an_error_inside_the_block_drops_the_lock(tmp_path: Path) -> None:
    lock_file = tmp_path / "x.lock"
    try:
        with exclusive_lock(lock_file):
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    assert _other_process_gets(lock_file)
