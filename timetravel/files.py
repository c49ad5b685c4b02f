"""Small files (manifests, job state) on local disk or the warehouse's S3, via pyarrow.fs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from timetravel.config import Config

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["filesystem", "read_text", "write_text", "exists"]


def filesystem(config: Config, uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system holding ``uri`` and the path within it."""
    import pyarrow.fs as pafs

    for scheme in ("s3a://", "s3://"):
        if uri.startswith(scheme):
            s3 = config.s3
            options: dict[str, object] = {}
            if s3 is not None:
                options["region"] = s3.region
                if s3.endpoint:
                    scheme_name, _, host = s3.endpoint.partition("://")
                    options.update(endpoint_override=host, scheme=scheme_name)
                options["force_virtual_addressing"] = not s3.path_style
            if os.environ.get("AWS_ACCESS_KEY_ID"):
                options.update(
                    access_key=os.environ["AWS_ACCESS_KEY_ID"],
                    secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
                    session_token=os.environ.get("AWS_SESSION_TOKEN"),
                )
            return pafs.S3FileSystem(**options), uri[len(scheme) :]
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
    if not uri.startswith(("s3a://", "s3://")):
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
