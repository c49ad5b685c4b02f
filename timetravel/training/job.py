"""The training-set job: labels from a file or table in, training set + manifest out.

Shared by ``jobs/build_training_set.py`` (spark-submit) and ``timetravel training-set``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from timetravel.errors import LabelError
from timetravel.times import parse_duration
from timetravel.training.dataset import OutputFormat
from timetravel.training.label_location import LabelLocation, resolve_labels
from timetravel.training.manifest import Manifest

if TYPE_CHECKING:
    from timetravel.facade import Engine, TimeTravel

__all__ = ["build_training_set", "parse_staleness", "read_labels"]


def parse_staleness(
    values: str | Sequence[str] | Mapping[str, str] | None, *, what: str = "--max-staleness"
) -> timedelta | dict[str, timedelta] | None:
    """``"7d"`` or ``["7d"]`` -> 7 days for every source; ``"ratings=30d,my-list=7d"``,
    ``["ratings=30d", "my-list=7d"]`` or ``{"ratings": "30d"}`` -> per source. ``what`` names
    the parameter in messages (a CLI flag, or an API field)."""
    if not values:
        return None
    if isinstance(values, str):
        values = values.split(",") if "=" in values else [values]
    elif isinstance(values, Mapping):
        values = [f"{source}={text}" for source, text in values.items()]
    per_source: dict[str, timedelta] = {}
    for value in values:
        source, sep, text = str(value).partition("=")
        try:
            if not sep:
                if len(values) > 1:
                    raise ValueError("give one bound for all sources, or SOURCE=DURATION pairs")
                return parse_duration(value)
            name = source.strip()
            if not name or name in per_source:
                raise ValueError("each SOURCE=DURATION pair names one source, once")
            per_source[name] = parse_duration(text)
        except ValueError as exc:
            raise LabelError(f"{what} {str(value)[:80]!r}: {exc}") from None
    return per_source


def build_training_set(
    tt: TimeTravel,
    labels_uri: str,
    out: str,
    *,
    features: Sequence[str] | None = None,
    max_staleness: timedelta | Mapping[str, timedelta] | None = None,
    engine: Engine | None = None,
    fmt: OutputFormat = "delta",
    label_time: str = "label_time",
    overwrite: bool = False,
) -> Manifest:
    """Read labels, build the training set on the chosen engine, write it with its manifest."""
    labels = read_labels(tt, resolve_labels(tt.config, labels_uri), engine)
    result = tt.training_set(
        labels, features=features, max_staleness=max_staleness, engine=engine, label_time=label_time
    )
    return result.write(out, fmt=fmt, overwrite=overwrite)


def read_labels(tt: TimeTravel, location: LabelLocation, engine: Engine | None) -> Any:
    """Labels at a resolved location, as the engine that will use them wants them: a Spark
    DataFrame for ``spark``, else an Arrow table."""
    # 'auto' reads with Arrow: the label count then decides where the join runs.
    wanted = engine or tt.config.query.engine
    return tt.engine("spark" if wanted == "spark" else "duckdb").read_labels(location)
