"""The training-set job: labels from a file or table in, training set + manifest out.

Shared by ``jobs/build_training_set.py`` (spark-submit) and ``timetravel training-set``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from timetravel.dataset import OutputFormat
from timetravel.embedded import storage_options
from timetravel.errors import LabelError
from timetravel.labels import labels_format, read_labels_arrow, read_labels_spark
from timetravel.manifest import Manifest
from timetravel.times import parse_duration

if TYPE_CHECKING:
    from timetravel.facade import Engine, TimeTravel

__all__ = ["build_training_set", "parse_staleness"]


def parse_staleness(values: str | Sequence[str] | Mapping[str, str] | None
                    ) -> timedelta | dict[str, timedelta] | None:
    """``"7d"`` or ``["7d"]`` -> 7 days for every source; ``["ratings=30d", "my-list=7d"]``
    or ``{"ratings": "30d"}`` (an API body) -> per source."""
    if not values:
        return None
    if isinstance(values, str):
        values = [values]
    elif isinstance(values, Mapping):
        values = [f"{source}={text}" for source, text in values.items()]
    per_source: dict[str, timedelta] = {}
    for value in values:
        source, sep, text = value.partition("=")
        try:
            if not sep:
                if len(values) > 1:
                    raise ValueError("give one bound for all sources, or SOURCE=DURATION pairs")
                return parse_duration(value)
            per_source[source.strip()] = parse_duration(text)
        except ValueError as exc:
            raise LabelError(f"--max-staleness {value!r}: {exc}") from None
    return per_source


def build_training_set(tt: "TimeTravel", labels_uri: str, out: str, *,
                       features: Sequence[str] | None = None,
                       max_staleness: timedelta | Mapping[str, timedelta] | None = None,
                       engine: "Engine | None" = None, fmt: OutputFormat = "delta",
                       label_time: str = "label_time", overwrite: bool = False) -> Manifest:
    """Read labels, build the training set on the chosen engine, write it with its manifest."""
    kind = labels_format(labels_uri)
    labels: Any
    if (engine or tt.config.query.engine) == "spark":
        labels = read_labels_spark(tt.spark, labels_uri, fmt=kind)
    else:
        labels = read_labels_arrow(labels_uri, storage_options=storage_options(tt.config), fmt=kind)
    result = tt.training_set(labels, features=features, max_staleness=max_staleness,
                             engine=engine, label_time=label_time)
    return result.write(out, fmt=fmt, overwrite=overwrite)
