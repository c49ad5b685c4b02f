"""Waiting for a server process the test started."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Poll ``url``/healthz until it answers 200; fail with the process's output if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up in {timeout_s:.0f} s")
