"""A built training set: its rows on one engine, its manifest, and how to write both out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from timetravel.errors import TimeTravelError
from timetravel.training.manifest import Manifest
from timetravel.warehouse.files import exists, write_text

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from timetravel.config import Config

__all__ = ["TrainingSet", "OutputFormat"]

OutputFormat = Literal["delta", "parquet"]


class TrainingSet:
    """Rows (a Spark DataFrame or an Arrow table) plus the manifest that reproduces them.

    Example:
        >>> ts = tt.training_set(labels, features=["plays_7d"])    # doctest: +SKIP
        >>> ts.to_pandas().head()                                   # doctest: +SKIP
        >>> ts.write("out/ts1")   # out/ts1/data (Delta), labels/, manifest.json  # doctest: +SKIP
    """

    def __init__(
        self,
        config: Config,
        manifest: Manifest,
        *,
        frame: DataFrame | None = None,
        table: pa.Table | None = None,
        labels_frame: DataFrame | None = None,
        labels_table: pa.Table | None = None,
        spark: SparkSession | None = None,
    ) -> None:
        if (frame is None) == (table is None):
            raise ValueError("a training set holds either a Spark frame or an Arrow table")
        self._config = config
        self._frame = frame
        self._table = table
        self._labels_frame = labels_frame
        self._labels_table = labels_table
        self._spark = spark
        self.manifest = manifest

    @property
    def engine(self) -> str:
        return self.manifest.engine

    @property
    def num_rows(self) -> int:
        return self.manifest.rows

    def to_arrow(self) -> pa.Table:
        """The rows as Arrow (collected to this process on the Spark engine)."""
        if self._table is not None:
            return self._table
        assert self._frame is not None
        table = self._frame.toArrow()
        return table.cast(_nullable(table.schema))

    def to_pandas(self) -> pd.DataFrame:
        """The rows as pandas; instants are tz-aware UTC on both engines."""
        return self.to_arrow().to_pandas()

    def to_spark(self, spark: SparkSession | None = None) -> DataFrame:
        if self._frame is not None:
            return self._frame
        session = spark or self._spark
        if session is None:
            raise TimeTravelError(
                "this training set was built embedded; pass a SparkSession to to_spark()"
            )
        return session.createDataFrame(self._table)

    def write(self, uri: str, *, fmt: OutputFormat = "delta", overwrite: bool = False) -> Manifest:
        """Write ``uri/data`` (Delta or Parquet), ``uri/labels`` (Parquet, for rebuilds) and
        ``uri/manifest.json`` last: a manifest means the write completed.

        An earlier write that died before its manifest is replaced; a completed one is kept
        unless ``overwrite``.
        """
        if fmt not in ("delta", "parquet"):
            raise TimeTravelError(f"unknown output format {fmt!r}; known: delta, parquet")
        uri = uri.rstrip("/")
        if exists(self._config, f"{uri}/manifest.json") and not overwrite:
            raise TimeTravelError(
                f"a training set already exists at {uri} (it has a "
                "manifest.json); pass overwrite=True (--overwrite) to replace it"
            )
        data, labels = f"{uri}/data", f"{uri}/labels"
        if self._frame is not None:
            self._write_spark(data, labels, fmt)
        else:
            self._write_arrow(data, labels, fmt)
        info = self.manifest.labels.model_copy(update={"uri": labels})
        self.manifest = self.manifest.model_copy(
            update={"labels": info, "output_uri": data, "output_format": fmt}
        )
        write_text(self._config, f"{uri}/manifest.json", self.manifest.to_json())
        return self.manifest

    def _write_spark(self, data: str, labels: str, fmt: OutputFormat) -> None:
        assert self._frame is not None and self._labels_frame is not None
        writer = self._frame.write.format(fmt).mode("overwrite")
        if fmt == "delta":
            writer = writer.option("overwriteSchema", "true")
        writer.save(_spark_uri(data))
        self._labels_frame.write.mode("overwrite").parquet(_spark_uri(labels))

    def _write_arrow(self, data: str, labels: str, fmt: OutputFormat) -> None:
        from timetravel.warehouse.s3 import delta_rs_options, rs_uri

        assert self._table is not None and self._labels_table is not None
        if fmt == "delta":
            from deltalake import write_deltalake

            write_deltalake(
                rs_uri(data),
                self._table,
                mode="overwrite",
                schema_mode="overwrite",
                storage_options=delta_rs_options(self._config),
            )
        else:
            self._replace_parquet(data, self._table)
        self._replace_parquet(labels, self._labels_table)

    def _replace_parquet(self, directory: str, table: pa.Table) -> None:
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        from timetravel.warehouse.files import filesystem

        fs, path = filesystem(self._config, directory)
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_dir(path)
        fs.create_dir(path, recursive=True)
        pq.write_table(table, f"{path}/part-00000.parquet", filesystem=fs)


def _nullable(schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(f.name, f.type) for f in schema])


def _spark_uri(uri: str) -> str:
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri
