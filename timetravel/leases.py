"""One writer at a time: a lease object created with a conditional put (create-if-absent).

On local disk the lease is a file created with ``O_CREAT | O_EXCL``; on S3 it is an object
written with ``If-None-Match: *`` (S3 conditional writes; moto supports them too). A lease
names its holder and expires after a TTL, renewed while the holder works, so a crashed
holder's lease goes stale and the next writer takes it over.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from timetravel.config import Config
from timetravel.errors import TimeTravelError

__all__ = ["Lease", "LeaseHeldError"]


class LeaseHeldError(TimeTravelError):
    """Raised when another writer holds an unexpired lease on the same tables."""


class Lease:
    """``with Lease(config, "snapshot", holder="run-1"):`` — exclusive until the block ends."""

    def __init__(self, config: Config, name: str, *, holder: str, ttl_s: float = 600.0) -> None:
        self.config = config
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        root = config.warehouse.root
        self._key = f"_leases/{name}.json"
        self._s3 = urlparse(root) if config.warehouse.is_s3 else None
        self._path = None if self._s3 else Path(root) / self._key

    # ---------------------------------------------------------------- public
    def acquire(self) -> "Lease":
        for _ in range(2):
            if self._create():
                self._start_renewing()
                return self
            current = self._read()
            if current is not None and current["expires_at"] > time.time():
                raise LeaseHeldError(
                    f"another {self.name} writer holds the lease on {self.config.warehouse.root} "
                    f"(holder {current['holder']!r} on {current['host']}, expires in "
                    f"{current['expires_at'] - time.time():.0f}s); wait for it to finish, or "
                    f"remove {self.location} if that writer is gone")
            self._delete()  # stale: its holder died without releasing it
        raise LeaseHeldError(f"could not take the {self.name} lease at {self.location}")

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        current = self._read()
        if current is not None and current.get("token") == self.token:
            self._delete()

    @property
    def location(self) -> str:
        return f"{self.config.warehouse.root}/{self._key}"

    def __enter__(self) -> "Lease":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    # ---------------------------------------------------------------- storage
    def _body(self) -> bytes:
        return json.dumps({"holder": self.holder, "host": socket.gethostname(), "pid": os.getpid(),
                           "token": self.token, "expires_at": time.time() + self.ttl_s}).encode()

    def _create(self) -> bool:
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self._path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._body())
            return True
        from botocore.exceptions import ClientError

        try:
            self._client().put_object(Bucket=self._bucket, Key=self._object_key, Body=self._body(),
                                      IfNoneMatch="*")
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise

    def _read(self) -> dict[str, Any] | None:
        if self._path is not None:
            try:
                return dict(json.loads(self._path.read_text()))
            except (FileNotFoundError, json.JSONDecodeError):
                return None
        from botocore.exceptions import ClientError

        try:
            body = self._client().get_object(Bucket=self._bucket, Key=self._object_key)["Body"]
            return dict(json.loads(body.read()))
        except ClientError:
            return None

    def _write(self) -> None:
        if self._path is not None:
            tmp = self._path.with_suffix(".tmp")
            tmp.write_bytes(self._body())
            os.replace(tmp, self._path)
        else:
            self._client().put_object(Bucket=self._bucket, Key=self._object_key, Body=self._body())

    def _delete(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        else:
            self._client().delete_object(Bucket=self._bucket, Key=self._object_key)

    def _start_renewing(self) -> None:
        def renew() -> None:
            while not self._stop.wait(self.ttl_s / 3):
                current = self._read()
                if current is None or current.get("token") != self.token:
                    return  # taken over: stop touching it
                self._write()

        self._renewer = threading.Thread(target=renew, name=f"lease-{self.name}", daemon=True)
        self._renewer.start()

    @property
    def _bucket(self) -> str:
        assert self._s3 is not None
        return self._s3.netloc

    @property
    def _object_key(self) -> str:
        assert self._s3 is not None
        prefix = self._s3.path.strip("/")
        return f"{prefix}/{self._key}" if prefix else self._key

    def _client(self):  # type: ignore[no-untyped-def]
        import boto3

        s3 = self.config.s3
        assert s3 is not None
        return boto3.client("s3", endpoint_url=s3.endpoint, region_name=s3.region)
