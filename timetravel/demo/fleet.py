"""Start, find and stop the demo fleet: one process per service, each on a free port.

``Fleet.up(state_dir, ...)`` starts the services in the background and writes
``state_dir/fleet.json`` (URLs, pids, world, clock file); a conf or another process finds the
fleet there with ``Fleet.load(state_dir)``. Used as a context manager the fleet is stopped on
exit; ``timetravel demo up`` leaves it running until ``timetravel demo down``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from timetravel.demo.clock import Clock
from timetravel.demo.faults import FaultSettings
from timetravel.demo.serve import ADMIN_TOKEN_ENV
from timetravel.demo.world import SERVICES
from timetravel.errors import TimeTravelError

__all__ = ["Fleet", "FleetError", "FLEET_FILE", "free_port"]

FLEET_FILE = "fleet.json"
_TOKEN_FILE = "admin-token"


class FleetError(TimeTravelError):
    """Raised when the demo fleet cannot start, is not running, or a service misbehaves."""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fleet:
    """A running fleet: ``urls[service]`` is the base URL of each service."""

    state_dir: Path
    urls: dict[str, str]
    pids: dict[str, int]
    world: dict[str, Any]
    clock: Clock
    admin_token: str = field(repr=False)
    owned: bool = False

    @classmethod
    def up(
        cls,
        state_dir: str | os.PathLike[str],
        *,
        world: dict[str, Any] | None = None,
        services: tuple[str, ...] = SERVICES,
        faults: dict[str, FaultSettings] | None = None,
        clock_at: str | None = None,
        ready_timeout: float = 60.0,
    ) -> Fleet:
        """Start the services; if ``clock_at`` is given the clock starts frozen there."""
        directory = Path(state_dir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / FLEET_FILE).exists():
            existing = cls.load(directory)
            if existing.alive():
                raise FleetError(
                    f"a fleet is already running from {directory}; "
                    "stop it with `timetravel demo down` first"
                )
            existing.down()
        unknown = set(services) - set(SERVICES) | set(faults or {}) - set(services)
        if unknown:
            raise FleetError(f"unknown service(s) {sorted(unknown)}; known: {', '.join(SERVICES)}")
        token = secrets.token_urlsafe(24)
        token_file = directory / _TOKEN_FILE
        token_file.write_text(token)
        token_file.chmod(0o600)
        clock = Clock(directory / "clock.json")
        if clock_at is not None:
            clock.set(clock_at)
        world = dict(world or {})
        fleet = cls(directory, {}, {}, world, clock, token, owned=True)
        env = {**os.environ, ADMIN_TOKEN_ENV: token}
        try:
            for index, service in enumerate(services):
                port = free_port()
                settings = (faults or {}).get(service, FaultSettings())
                cmd = [
                    sys.executable,
                    "-m",
                    "timetravel.demo.serve",
                    "--service",
                    service,
                    "--port",
                    str(port),
                    "--world",
                    json.dumps(world),
                    "--clock-file",
                    str(clock.path),
                    "--faults",
                    settings.model_dump_json(),
                    "--seed",
                    str(index),
                ]
                log = open(directory / f"{service}.log", "ab")
                proc = subprocess.Popen(
                    cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
                fleet.urls[service] = f"http://127.0.0.1:{port}"
                fleet.pids[service] = proc.pid
            fleet._write()
            fleet._wait_ready(ready_timeout)
        except BaseException:
            fleet.down()
            raise
        return fleet

    @classmethod
    def load(cls, state_dir: str | os.PathLike[str]) -> Fleet:
        """The fleet described by ``state_dir/fleet.json``."""
        directory = Path(state_dir).resolve()
        file = directory / FLEET_FILE
        if not file.is_file():
            raise FleetError(
                f"no demo fleet at {directory} (no {FLEET_FILE}); "
                "start one with `timetravel demo up`"
            )
        data = json.loads(file.read_text())
        token = (directory / _TOKEN_FILE).read_text() if (directory / _TOKEN_FILE).exists() else ""
        return cls(
            directory, data["urls"], data["pids"], data["world"], Clock(data["clock_file"]), token
        )

    def alive(self) -> bool:
        return any(_pid_alive(pid) for pid in self.pids.values())

    def down(self) -> None:
        """Stop every service process and forget the fleet."""
        for pid in self.pids.values():
            if _pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for pid in self.pids.values():
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)
        (self.state_dir / FLEET_FILE).unlink(missing_ok=True)

    def set_faults(self, service: str, settings: FaultSettings) -> None:
        """Change a running service's latency/faults through its admin endpoint."""
        response = httpx.put(
            f"{self.urls[service]}/admin/faults",
            json=settings.model_dump(),
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )
        if response.status_code != 200:
            raise FleetError(f"{service}: could not set faults: HTTP {response.status_code}")

    def fault_counts(self, service: str) -> dict[str, int]:
        response = httpx.get(
            f"{self.urls[service]}/admin/faults",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )
        return dict(response.json()["counts"])

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def _write(self) -> None:
        data = {
            "urls": self.urls,
            "pids": self.pids,
            "world": self.world,
            "clock_file": str(self.clock.path),
        }
        (self.state_dir / FLEET_FILE).write_text(json.dumps(data, indent=1))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(self.urls)
        while pending and time.monotonic() < deadline:
            for service, url in list(pending.items()):
                if not _pid_alive(self.pids[service]):
                    log = (self.state_dir / f"{service}.log").read_text()[-2000:]
                    raise FleetError(f"{service} exited during start-up:\n{log}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        del pending[service]
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        if pending:
            raise FleetError(f"services not ready after {timeout:.0f}s: {sorted(pending)}")


def _pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own children
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another `timetravel demo up`)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
