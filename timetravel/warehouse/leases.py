"""One writer at a time: a lease object that only changes hands by compare-and-swap.

A lease names its holder and expires after a TTL; the holder renews it while it works, so a
crashed holder's lease goes stale and the next writer takes it over: at once if the holder
ran on the same host and its process is gone (a scheduler killed and restarted), otherwise
when the TTL runs out. Every change is
conditional on what the changer last saw, so two contenders can never both win:

- on S3, creation is a put with ``If-None-Match: *``; take-over, renewal and release are a put
  or delete with ``If-Match: <ETag seen>`` (S3 conditional writes; moto supports them too);
- on local disk, every read-check-write runs under an exclusive ``flock`` of a sidecar lock
  file, and the lease file is replaced whole by an atomic rename, so a reader never sees a
  half-written lease (which would otherwise look stale and be taken over).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlparse

from timetravel.config import Config
from timetravel.errors import TimeTravelError
from timetravel.locks import exclusive_lock

__all__ = ["Lease", "LeaseHeldError", "LeaseLostError"]

log = logging.getLogger("timetravel.warehouse.leases")


class LeaseHeldError(TimeTravelError):
    """Raised when another writer holds an unexpired lease on the same tables."""


class LeaseLostError(TimeTravelError):
    """Raised when a holder finds its lease was taken over (it stopped renewing in time)."""


@dataclass(frozen=True)
class _Seen:
    """A lease as read, with the tag a conditional change must match (ETag, or token)."""

    body: dict[str, Any]
    tag: str


class _Backend(Protocol):
    def create(self, body: bytes) -> str | None: ...  # new tag, or None if it exists
    def read(self) -> _Seen | None: ...
    def replace(self, body: bytes, tag: str) -> str | None: ...  # new tag, or None if changed
    def delete(self, tag: str) -> bool: ...


class Lease:
    """``with Lease(config, "snapshot", holder="run-1"):`` — exclusive until the block ends."""

    def __init__(self, config: Config, name: str, *, holder: str, ttl_s: float = 600.0) -> None:
        self.config = config
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self.token = uuid.uuid4().hex
        self._key = f"_leases/{name}.json"
        self._backend: _Backend = (
            _S3Object(config, self._key)
            if config.warehouse.is_s3
            else _LocalFile(Path(config.warehouse.root) / self._key)
        )
        self._tag: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # ---------------------------------------------------------------- public
    def acquire(self) -> Lease:
        for _ in range(3):
            tag = self._backend.create(self._body())
            if tag is None:
                current = self._backend.read()
                if current is None:
                    continue  # released between our create and read
                left = float(current.body.get("expires_at", 0)) - time.time()
                if left > 0 and not _holder_died_here(current.body):
                    raise LeaseHeldError(
                        f"another {self.name} writer holds the lease on "
                        f"{self.config.warehouse.root} (holder {current.body.get('holder')!r} "
                        f"on {current.body.get('host')}, expires in {left:.0f}s); wait for it "
                        f"to finish, or remove {self.location} if that writer is gone"
                    )
                # Stale: its holder died. Take it over only if nobody changed it since we read.
                tag = self._backend.replace(self._body(), current.tag)
            if tag is not None and self._confirm():
                self._tag = tag
                self._start_renewing()
                return self
        raise LeaseHeldError(
            f"could not take the {self.name} lease at {self.location}: other writers took it first"
        )

    def acquire_waiting(self, wait_s: float, *, poll_s: float = 0.2) -> Lease:
        """:meth:`acquire`, waiting up to ``wait_s`` while another holder has the lease."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.acquire()
            except LeaseHeldError:
                if time.monotonic() >= deadline:
                    raise
            # Jitter, so waiters do not retry in step.
            time.sleep(poll_s * (0.5 + random.random()))

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._tag is not None and not self._lost.is_set():
            self._backend.delete(self._tag)
        self._tag = None

    def ensure_held(self) -> None:
        """Raise :class:`LeaseLostError` if another writer has taken the lease over."""
        if self._lost.is_set():
            raise LeaseLostError(
                f"the {self.name} lease at {self.location} was taken over by "
                "another writer (this one did not renew it within "
                f"{self.ttl_s:.0f}s); stopping before writing anything more"
            )

    @property
    def location(self) -> str:
        return f"{self.config.warehouse.root}/{self._key}"

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # ---------------------------------------------------------------- internals
    def _body(self) -> bytes:
        return json.dumps(
            {
                "holder": self.holder,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "token": self.token,
                "expires_at": time.time() + self.ttl_s,
            }
        ).encode()

    def _confirm(self) -> bool:
        """Read back: the lease now names us. (A store whose conditional write is not atomic,
        such as a test server, could otherwise let two contenders both think they won.)"""
        current = self._backend.read()
        return current is not None and current.body.get("token") == self.token

    def renew(self) -> bool:
        """Extend the lease by one TTL; False (and the lease counts as lost) if it was taken."""
        if self._tag is None or self._lost.is_set():
            return False
        tag = self._backend.replace(self._body(), self._tag)
        if tag is None:
            self._lost.set()
            log.warning(
                "the %s lease at %s was taken over by another writer", self.name, self.location
            )
            return False
        self._tag = tag
        return True

    def _start_renewing(self) -> None:
        def renew() -> None:
            while not self._stop.wait(self.ttl_s / 3):
                if not self.renew():
                    return

        self._renewer = threading.Thread(target=renew, name=f"lease-{self.name}", daemon=True)
        self._renewer.start()


def _holder_died_here(body: dict[str, Any]) -> bool:
    """The holder ran on this host and its process is gone (killed, crashed): its lease is
    stale now, not when its TTL runs out. A restarted scheduler resumes at once."""
    pid = body.get("pid")
    if body.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # another thread of this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


class _LocalFile:
    """The lease as a file; every change under an exclusive flock of ``<file>.lock``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _locked(self) -> AbstractContextManager[None]:
        return exclusive_lock(self.path.with_name(f"{self.path.name}.lock"))

    def _write(self, body: bytes) -> str:
        temporary = self.path.with_name(f"{self.path.name}.tmp-{uuid.uuid4().hex}")
        temporary.write_bytes(body)
        os.replace(temporary, self.path)
        return str(json.loads(body)["token"])

    def _read_unlocked(self) -> _Seen | None:
        try:
            body = dict(json.loads(self.path.read_bytes()))
        except FileNotFoundError:
            return None
        return _Seen(body, str(body.get("token")))

    def create(self, body: bytes) -> str | None:
        with self._locked():
            return None if self.path.exists() else self._write(body)

    def read(self) -> _Seen | None:
        with self._locked():
            return self._read_unlocked()

    def replace(self, body: bytes, tag: str) -> str | None:
        with self._locked():
            current = self._read_unlocked()
            return self._write(body) if current is not None and current.tag == tag else None

    def delete(self, tag: str) -> bool:
        with self._locked():
            current = self._read_unlocked()
            if current is None or current.tag != tag:
                return False
            self.path.unlink()
            return True


class _S3Object:
    """The lease as an S3 object; changes are conditional on its ETag."""

    _CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")

    def __init__(self, config: Config, key: str) -> None:
        from timetravel.warehouse.s3 import boto3_client

        s3 = config.s3
        assert s3 is not None
        root = urlparse(config.warehouse.root)
        prefix = root.path.strip("/")
        self.bucket = root.netloc
        self.key = f"{prefix}/{key}" if prefix else key
        self.client = boto3_client(s3)

    def _put(self, body: bytes, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, **condition
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in (*self._CONFLICT, "NoSuchKey"):
                return None
            raise
        return str(answer["ETag"])

    def create(self, body: bytes) -> str | None:
        return self._put(body, IfNoneMatch="*")

    def read(self) -> _Seen | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise  # not "absent": never take over on a read that failed
        return _Seen(dict(json.loads(answer["Body"].read())), str(answer["ETag"]))

    def replace(self, body: bytes, tag: str) -> str | None:
        return self._put(body, IfMatch=tag)

    def delete(self, tag: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=tag)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in (*self._CONFLICT, "NoSuchKey", "404"):
                return False
            raise
        return True
