"""Where a label set is read from: a URI resolved to the one canonical location the readers
open, and, for the API, confined to configured roots.

Access is decided on what a reader will actually open, never on the raw string: the URI is
percent-decoded once, normalised (``..`` and ``.`` folded), and on local disk every link is
resolved (``realpath``). The readers are then handed that canonical location and nothing
else, so they cannot decode, normalise or expand it into somewhere else. Also refused:

- glob and brace metacharacters (``* ? [ ] { }``): Hadoop would expand them after the check;
- a ``%`` left after decoding (double encoding a reader might decode again), control
  characters, queries and fragments;
- inside a label directory (Parquet folder or Delta table): a symbolic link resolving outside
  the root, and a Delta log naming data files outside it.

Roots are compared by path components, not string prefixes (``/data/labels-other`` is not
under ``/data/labels``). Error messages name the problem and the URI, never file content.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from timetravel.config import Config
from timetravel.errors import LabelError

__all__ = ["LabelLocation", "LabelFormat", "resolve_labels"]

LabelFormat = Literal["parquet", "csv", "delta"]
_GLOB = set("*?[]{}")
_MAX_ENTRIES = 100_000  # files looked at inside one label directory


@dataclass(frozen=True)
class LabelLocation:
    """A label set's canonical location: an absolute local path or ``s3a://bucket/key``."""

    uri: str
    fmt: LabelFormat

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3a://")


@dataclass(frozen=True)
class _Parsed:
    bucket: str | None  # None: local disk
    path: str  # local: absolute, links resolved; S3: normalised key, no '/'


def resolve_labels(
    config: Config, uri: str, *, roots: Sequence[str] | None = None, fmt: LabelFormat | None = None
) -> LabelLocation:
    """The canonical location of ``uri`` and its format; with ``roots``, it must lie under one.

    Raises :class:`LabelError` naming the problem (never echoing what the file holds).
    """
    target = _parse(uri, what="labels_uri")
    confined = None
    if roots is not None:
        if not roots:
            raise LabelError("no label roots are configured (api.labels_roots); send labels inline")
        parsed_roots = [_parse(root, what="api.labels_roots entry") for root in roots]
        confined = next((r for r in parsed_roots if _under(target, r)), None)
        if confined is None:
            raise LabelError(
                f"labels_uri {uri!r} is not under any allowed root "
                f"(must be under one of: {', '.join(roots)})"
            )
    location = LabelLocation(_render(target), fmt or _detect(config, target, uri))
    if confined is not None:
        _check_contents(config, location, target, confined, uri)
    return location


def _parse(uri: str, *, what: str) -> _Parsed:
    if any(ord(c) < 32 or c == "\x7f" for c in uri):
        raise LabelError(f"{what} holds control characters")
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("s3", "s3a"):
        parts = urlsplit(uri)
        if parts.query or parts.fragment or "?" in uri or "#" in uri:
            raise LabelError(f"{what} {uri!r} must not have a query or fragment")
        if not parts.netloc:
            raise LabelError(f"{what} {uri!r} names no bucket")
        key = _decoded(parts.path, uri, what)
        normal = posixpath.normpath("/" + key).lstrip("/")
        return _Parsed(parts.netloc, "" if normal == "." else normal)
    if scheme == "file":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise LabelError(f"{what} {uri!r}: a file URI is file:///absolute/path")
        path = _decoded(parts.path, uri, what)
    elif scheme == "":
        path = _decoded(uri, uri, what, decode=False)
    else:
        raise LabelError(
            f"{what} {uri!r}: unsupported scheme {scheme!r}; "
            "use a local path, file://, s3:// or s3a://"
        )
    return _Parsed(None, os.path.realpath(os.path.expanduser(path)))


def _decoded(text: str, uri: str, what: str, *, decode: bool = True) -> str:
    value = unquote(text, errors="strict") if decode else text
    if "%" in value:
        raise LabelError(
            f"{what} {uri!r}: '%' is not allowed in label paths (percent-encoding is decoded once)"
        )
    if any(c in _GLOB for c in value):
        raise LabelError(
            f"{what} {uri!r}: glob and brace characters (* ? [ ] {{ }}) are not "
            "allowed; name one file, Parquet directory or Delta table"
        )
    if "\x00" in value:
        raise LabelError(f"{what} holds a NUL character")
    return value


def _under(target: _Parsed, root: _Parsed) -> bool:
    if target.bucket != root.bucket:
        return False
    if target.bucket is None:
        return Path(target.path).is_relative_to(root.path)
    have, need = target.path.split("/"), [p for p in root.path.split("/") if p]
    return have[: len(need)] == need


def _render(parsed: _Parsed) -> str:
    return parsed.path if parsed.bucket is None else f"s3a://{parsed.bucket}/{parsed.path}"


def _detect(config: Config, target: _Parsed, uri: str) -> LabelFormat:
    import pyarrow.fs as pafs

    from timetravel.warehouse.files import filesystem

    lowered = target.path.rstrip("/").lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    fs, path = filesystem(config, _render(target))
    try:
        if fs.get_file_info(f"{path}/_delta_log").type == pafs.FileType.Directory:
            return "delta"
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise LabelError(f"labels not found: {uri!r}")
        if info.type == pafs.FileType.Directory and any(
            f.path.endswith(".parquet")
            for f in fs.get_file_info(pafs.FileSelector(path, recursive=False))
        ):
            return "parquet"
    except OSError as exc:
        raise LabelError(f"cannot open labels at {uri!r} ({type(exc).__name__})") from None
    raise LabelError(
        f"cannot tell the format of labels at {uri!r}: expected a .csv or "
        ".parquet file, a Parquet directory, or a Delta table"
    )


def _check_contents(
    config: Config, location: LabelLocation, target: _Parsed, root: _Parsed, uri: str
) -> None:
    """No link inside a label directory, and no file a Delta log names, lies outside root."""
    if target.bucket is None and os.path.isdir(target.path):
        seen = 0
        for folder, dirs, files in os.walk(target.path, followlinks=False):
            for name in [*dirs, *files]:
                seen += 1
                if seen > _MAX_ENTRIES:
                    raise LabelError(f"labels at {uri!r} hold over {_MAX_ENTRIES} files")
                entry = os.path.join(folder, name)
                if os.path.islink(entry) and not Path(os.path.realpath(entry)).is_relative_to(
                    root.path
                ):
                    raise LabelError(
                        f"labels at {uri!r} contain a link leading outside the allowed roots"
                    )
    if location.fmt == "delta":
        from deltalake import DeltaTable

        from timetravel.warehouse.s3 import delta_rs_options, rs_uri

        try:
            paths = (
                DeltaTable(rs_uri(location.uri), storage_options=delta_rs_options(config))
                .get_add_actions(flatten=True)
                .column("path")
                .to_pylist()
            )
        except Exception as exc:  # noqa: BLE001 - delta-rs raises several kinds; none echoed
            raise LabelError(
                f"cannot open the Delta labels at {uri!r} ({type(exc).__name__})"
            ) from None
        for path in paths:
            if not _under(_delta_file(target, str(path)), root):
                raise LabelError(
                    f"the Delta labels at {uri!r} name data files outside the allowed roots"
                )


def _delta_file(table: _Parsed, path: str) -> _Parsed:
    """Where a Delta log's ``add`` path points: relative to the table, or an absolute URI
    (Spark's Delta follows those; a crafted log could name any file)."""
    parts = urlsplit(path)
    if parts.scheme == "file":
        return _Parsed(None, os.path.realpath(unquote(parts.path)))
    if parts.scheme in ("s3", "s3a", "s3n"):
        return _Parsed(parts.netloc, posixpath.normpath("/" + unquote(parts.path)).lstrip("/"))
    if parts.scheme:
        return _Parsed("", "")  # another store: never under a root
    relative = unquote(path)
    if table.bucket is None:
        return _Parsed(None, os.path.realpath(os.path.join(table.path, relative)))
    return _Parsed(table.bucket, posixpath.normpath(f"/{table.path}/{relative}").lstrip("/"))
