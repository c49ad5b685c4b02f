"""The one error hierarchy of timetravel.

Every error a user can cause or fix derives from :class:`TimeTravelError`; errors about
bad input (config, labels, requests) also derive from :class:`ValueError`. Messages say
what was wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "TimeTravelError",
    "ConfigError",
    "SetupError",
    "StoreError",
    "TableNotFoundError",
    "TimeTravelRangeError",
    "SelectionError",
    "RunNotFoundError",
    "AsOfError",
    "FeatureError",
    "LabelError",
    "ManifestError",
    "describe_error",
]


class TimeTravelError(Exception):
    """Base class of every error raised by timetravel."""


class ConfigError(TimeTravelError, ValueError):
    """Raised when a config file is missing, malformed, or has an invalid or unknown key."""


class SetupError(TimeTravelError):
    """Raised when the runtime is not set up (jars not fetched, Maven missing, Java missing)."""


class StoreError(TimeTravelError):
    """Raised when a Delta table cannot be created, written or read as asked."""


class MaintenanceError(StoreError, ValueError):
    """Raised when maintenance is refused: it would break a pinned version, or bad input."""


class TableNotFoundError(StoreError, ValueError):
    """Raised when a table is opened that does not exist at the given location."""


class TimeTravelRangeError(StoreError, ValueError):
    """Raised when a version or timestamp asked for is outside the table's history."""


class SelectionError(TimeTravelError, ValueError):
    """Raised when contexts cannot be selected: empty population, unknown strata columns."""


class RunNotFoundError(TimeTravelError, ValueError):
    """Raised when a run id is not in the runs index."""


class AsOfError(TimeTravelError, ValueError):
    """Raised when a point-in-time join is asked with missing columns or wrong types."""


class FeatureError(TimeTravelError, ValueError):
    """Raised when an unknown feature or encoder version is asked for, or one cannot be computed
    from the facts at hand."""


class LabelError(TimeTravelError, ValueError):
    """Raised when a label set cannot be used: unreadable, missing columns, wrong types."""


class ManifestError(TimeTravelError, ValueError):
    """Raised when a training-set manifest is malformed or cannot be reproduced."""


def describe_error(exc: BaseException) -> str:
    """``"Type: first line of the message"`` (at most 300 characters of it): what the runs
    index and logs record of a failure, without the stack trace a JVM error carries."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else '(no message)'}"
