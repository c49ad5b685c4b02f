"""Small files (manifests, job state) on local disk or the warehouse's S3, via pyarrow.fs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from timetravel.config import Config
from timetravel.warehouse.s3 import arrow_filesystem, is_s3_uri

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["filesystem", "read_text", "write_text", "exists"]


def filesystem(config: Config, uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system holding ``uri`` and the path within it."""
    import pyarrow.fs as pafs

    if is_s3_uri(uri):
        return arrow_filesystem(config), uri.split("://", 1)[1]
    return pafs.LocalFileSystem(), os.path.abspath(uri.removeprefix("file://"))


def read_text(config: Config, uri: str) -> str:
    fs, path = filesystem(config, uri)
    with fs.open_input_stream(path) as stream:
        return stream.read().decode("utf-8")


def write_text(config: Config, uri: str, text: str) -> None:
    """Write ``text`` whole (local files appear atomically, via a rename)."""
    fs, path = filesystem(config, uri)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    if not is_s3_uri(uri):
        temporary = f"{path}.tmp-{os.getpid()}"
        with fs.open_output_stream(temporary) as stream:
            stream.write(text.encode("utf-8"))
        fs.move(temporary, path)
        return
    with fs.open_output_stream(path) as stream:  # S3 puts are atomic
        stream.write(text.encode("utf-8"))


def exists(config: Config, uri: str) -> bool:
    import pyarrow.fs as pafs

    fs, path = filesystem(config, uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound
