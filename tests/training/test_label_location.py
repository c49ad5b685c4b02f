"""Where labels are read from: canonical locations, confinement, and reads on local disk and
on the S3 test server with the profile's endpoint (no Spark)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import TEST_BUCKET
from tests.utils.s3server import MotoServer
from timetravel.config import Config
from timetravel.errors import LabelError
from timetravel.training.label_location import resolve_labels
from timetravel.training.labels import read_labels_arrow

LABELS = pd.DataFrame({"member_id": [1, 2], "label_time": ["2026-06-01T00:00:00Z"] * 2})


def write_all_formats(config: Config, base: str) -> None:
    """labels.csv, labels.parquet, a Parquet folder, a Delta table and a plain folder."""
    from deltalake import write_deltalake

    from timetravel.warehouse.files import filesystem, write_text
    from timetravel.warehouse.s3 import delta_rs_options, rs_uri

    table = pa.Table.from_pandas(LABELS, preserve_index=False)
    write_text(config, f"{base}/labels.csv", LABELS.to_csv(index=False))
    for name in ("labels.parquet", "folder/part-0.parquet"):
        fs, path = filesystem(config, f"{base}/{name}")
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(path) as out:
            pq.write_table(table, out)
    write_text(config, f"{base}/plain/readme.txt", "not labels")
    write_deltalake(rs_uri(f"{base}/delta"), table, storage_options=delta_rs_options(config))


def test_every_format_is_read_on_s3_with_the_profiles_endpoint(
    s3_server: MotoServer, s3_config: Config
) -> None:
    base = f"{s3_config.warehouse.root}/labels"
    write_all_formats(s3_config, base)
    for name, fmt in (
        ("labels.csv", "csv"),
        ("labels.parquet", "parquet"),
        ("folder", "parquet"),
        ("delta", "delta"),
    ):
        for scheme in ("s3a", "s3"):
            uri = f"{base}/{name}".replace("s3a://", f"{scheme}://")
            location = resolve_labels(s3_config, uri, roots=[base])
            assert (location.fmt, location.uri) == (fmt, f"{base}/{name}")
            table = read_labels_arrow(s3_config, location)
            assert sorted(table.column("member_id").to_pylist()) == [1, 2], name
    # An object store path without an extension is no longer assumed to be Delta.
    with pytest.raises(LabelError, match="cannot tell the format"):
        resolve_labels(s3_config, f"{base}/plain")
    with pytest.raises(LabelError, match="labels not found"):
        resolve_labels(s3_config, f"{base}/nothing-here")


def test_s3_keys_are_normalised_and_compared_by_component(s3_config: Config) -> None:
    root = f"s3a://{TEST_BUCKET}/labels"
    refused = [
        f"{root}/../secret.csv",
        f"{root}/%2e%2e/secret.csv",
        f"{root}-other/x.csv",
        "s3a://other-bucket/labels/x.csv",
        f"{root}/a/%2E%2E/%2e%2e/secret.csv",
    ]
    for uri in refused:
        with pytest.raises(LabelError, match="not under any allowed root"):
            resolve_labels(s3_config, uri, roots=[root], fmt="csv")
    inside = resolve_labels(
        s3_config, f"s3://{TEST_BUCKET}/labels/a/../b/./x.csv", roots=[root], fmt="csv"
    )
    assert inside.uri == f"{root}/b/x.csv"
    for uri in (f"{root}/*.csv", f"{root}/{{a,b}}.csv", f"{root}/x.csv?versionId=1"):
        with pytest.raises(LabelError, match="glob|query"):
            resolve_labels(s3_config, uri, roots=[root], fmt="csv")


def test_local_locations_are_canonical(local_config: Config, tmp_path: Path) -> None:
    root = tmp_path / "labels"
    root.mkdir()
    (root / "x.csv").write_text(LABELS.to_csv(index=False))
    (tmp_path / "secret.csv").write_text(LABELS.to_csv(index=False))
    os.symlink(tmp_path / "secret.csv", root / "link.csv")
    os.symlink(root / "x.csv", root / "alias.csv")  # a link that stays inside
    assert resolve_labels(local_config, f"file://{root}/%78.csv", roots=[str(root)]).uri == str(
        root / "x.csv"
    )
    assert resolve_labels(local_config, str(root / "alias.csv"), roots=[str(root)]).uri == str(
        root / "x.csv"
    )
    for uri in (f"{root}/link.csv", f"file://{root}/%2e%2e/secret.csv", f"{root}/../secret.csv"):
        with pytest.raises(LabelError, match="not under any allowed root"):
            resolve_labels(local_config, uri, roots=[str(root)])
    with pytest.raises(LabelError, match="no label roots are configured"):
        resolve_labels(local_config, str(root / "x.csv"), roots=[])
    with pytest.raises(LabelError, match="control characters"):
        resolve_labels(local_config, f"{root}/x\n.csv", roots=[str(root)])
    with pytest.raises(LabelError, match="unsupported scheme 'hdfs'"):
        resolve_labels(local_config, f"hdfs://nn/{uuid.uuid4().hex}.csv", roots=[str(root)])
