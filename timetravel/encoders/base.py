"""What a feature encoder is, and the batch of facts it reads.

An encoder is a pure, versioned function of (the chosen snapshot's facts, the label time t).
It is written once, vectorised over a :class:`FactBatch` (Arrow columns), and that same code
serves every path: Spark partitions (``mapInArrow``), the embedded engine's Arrow tables, and
online scoring (a batch of one row built from live facts). Consistency between training and
serving is therefore by construction, and a test checks it anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from timetravel.asof.contract import output_column

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Encoder", "FactBatch", "OutputType", "source_alias"]

OutputType = Literal["long", "double", "string", "boolean"]
MICROS_PER_DAY = 86_400_000_000


def source_alias(source: str) -> str:
    """A source name as a column prefix ('viewing-history' -> 'viewing_history')."""
    return source.replace("-", "_")


@dataclass(frozen=True)
class FactBatch:
    """Rows of (label time, chosen snapshot per source), as the as-of join produced them.

    Columns: ``label_time`` and, per source alias ``a`` and fact field ``f``, ``a__f`` plus
    ``a__snapshot_time`` (null when no usable snapshot was found).
    """

    table: pa.Table
    label_time: str = "label_time"

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def t(self) -> np.ndarray:
        """Label times as int64 microseconds since the epoch (nulls as the minimum int64)."""
        return _micros(self.table.column(self.label_time))

    def present(self, source: str) -> np.ndarray:
        """Rows that have a usable snapshot of ``source`` (and a label time)."""
        import pyarrow.compute as pc

        snapshot = self.table.column(output_column(source_alias(source), "snapshot_time"))
        label = self.table.column(self.label_time)
        return np.asarray(
            pc.and_(pc.is_valid(snapshot), pc.is_valid(label)).to_numpy(zero_copy_only=False),
            dtype=bool,
        )

    def column(self, source: str, field_name: str) -> pa.Array:
        """One fact field of the chosen snapshots (a combined Arrow array)."""
        return self.table.column(output_column(source_alias(source), field_name)).combine_chunks()

    def numbers(self, source: str, field_name: str, *, fill: float = 0.0) -> np.ndarray:
        """A numeric fact field as float64, nulls replaced by ``fill``."""
        import pyarrow.compute as pc

        values = pc.fill_null(pc.cast(self.column(source, field_name), "double"), fill)
        return values.to_numpy(zero_copy_only=False)

    def elements(self, source: str, field_name: str, child: str) -> tuple[np.ndarray, pa.Array]:
        """For a list<struct> field: (row index of each element, the elements' ``child``)."""
        import pyarrow.compute as pc

        lists = self.column(source, field_name)
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        values = pc.struct_field(pc.list_flatten(lists), child)
        return parents.astype(np.int64), values

    @staticmethod
    def micros(values: pa.Array) -> np.ndarray:
        """Timestamps as int64 microseconds (nulls as the minimum int64)."""
        return _micros(values)


def _micros(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    as_us = (
        pc.cast(values, pa.timestamp("us", tz="UTC"))
        if pa.types.is_timestamp(values.type)
        else values
    )
    ints = pc.cast(as_us, pa.int64())
    return pc.fill_null(ints, np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)


Compute = Callable[[FactBatch], "tuple[np.ndarray, np.ndarray] | np.ndarray | pa.Array"]


@dataclass(frozen=True)
class Encoder:
    """A versioned feature: which facts it reads and how it turns them into one value.

    ``compute`` returns values for every row of the batch, either an Arrow array (nulls
    included) or ``(values, valid)`` numpy arrays. Rows without a usable snapshot of every
    source it reads are null whatever it returns.
    """

    name: str
    version: int
    description: str
    owner: str
    reads: Mapping[str, tuple[str, ...]]
    output: OutputType
    compute: Compute = field(repr=False, compare=False)
    tags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.reads)

    def describe(self) -> dict[str, object]:
        """A JSON-ready description (for the registry listing and manifests)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "owner": self.owner,
            "output": self.output,
            "tags": list(self.tags),
            "reads": {s: list(f) for s, f in self.reads.items()},
        }
