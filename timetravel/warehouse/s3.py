"""One owner of S3 addressing: the profile's ``s3`` section rendered for every client that
talks to the store — Spark's S3A, delta-rs (object_store), pyarrow's file system and boto3 —
and the one rewrite between Hadoop's ``s3a://`` and the ``s3://`` the Rust/Arrow side reads.

Credentials never come from here: every client takes them from the AWS chain (environment,
profile, role); delta-rs and pyarrow are handed the environment's keys when they are set.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from timetravel.config import Config, S3Settings

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = [
    "spark_settings",
    "delta_rs_options",
    "arrow_filesystem",
    "boto3_client",
    "rs_uri",
    "is_s3_uri",
]

_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def is_s3_uri(uri: str) -> bool:
    return uri.startswith(("s3a://", "s3://"))


def rs_uri(uri: str) -> str:
    """A URI as delta-rs and pyarrow spell it: ``s3://`` for Hadoop's ``s3a://``; local paths
    absolute."""
    if uri.startswith("s3a://"):
        return "s3://" + uri[len("s3a://") :]
    return uri if "://" in uri else os.path.abspath(uri)


def spark_settings(s3: S3Settings) -> dict[str, str]:
    """``spark.hadoop.fs.s3a.*`` settings for the endpoint."""
    prefix = "spark.hadoop.fs.s3a."
    settings = {
        prefix + "impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        prefix + "path.style.access": str(s3.path_style).lower(),
        prefix + "endpoint.region": s3.region,
        # AWS SDK >= 2.30 adds CRC checksums and drops Content-MD5 by default; third-party
        # stores (MinIO, moto, Ceph...) reject or mis-handle that. Keep the old behaviour.
        prefix + "request.md5.header": "true",
        prefix + "checksum.generation": "false",
        prefix + "create.checksum.algorithm": "",
    }
    if s3.endpoint is not None:
        settings[prefix + "endpoint"] = s3.endpoint
        settings[prefix + "connection.ssl.enabled"] = str(s3.endpoint.startswith("https")).lower()
    return settings


def delta_rs_options(config: Config) -> dict[str, str]:
    """delta-rs (object_store) options for the profile's S3 endpoint; empty for local disk."""
    if not config.warehouse.is_s3 or config.s3 is None:
        return {}
    s3 = config.s3
    options = {
        "AWS_REGION": s3.region,
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": str(not s3.path_style).lower(),
    }
    if s3.endpoint:
        options["AWS_ENDPOINT_URL"] = s3.endpoint
        options["AWS_ALLOW_HTTP"] = str(s3.endpoint.startswith("http://")).lower()
    for variable in _CREDENTIALS:
        if os.environ.get(variable):
            options[variable] = os.environ[variable]
    return options


def arrow_filesystem(config: Config) -> pafs.S3FileSystem:
    """pyarrow's S3 file system for the profile's endpoint."""
    import pyarrow.fs as pafs

    options: dict[str, Any] = {}
    s3 = config.s3
    if s3 is not None:
        options["region"] = s3.region
        if s3.endpoint:
            scheme, _, host = s3.endpoint.partition("://")
            options.update(endpoint_override=host, scheme=scheme)
        options["force_virtual_addressing"] = not s3.path_style
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        options.update(
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
            session_token=os.environ.get("AWS_SESSION_TOKEN"),
        )
    return pafs.S3FileSystem(**options)


def boto3_client(s3: S3Settings) -> Any:
    """A boto3 S3 client for the endpoint (path-style addressing when the profile says so)."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name=s3.region,
        config=BotoConfig(s3={"addressing_style": "path" if s3.path_style else "virtual"}),
    )
