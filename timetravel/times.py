"""One place where instants enter the system: everything becomes an aware UTC datetime.

Decision: a naive datetime or an ISO string without an offset is taken as UTC (never as
the host's local time), whatever ``TZ`` says. This is tested under a non-UTC ``TZ``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

__all__ = [
    "to_utc",
    "format_spark_timestamp",
    "from_micros",
    "to_micros",
    "arrow_micros",
    "spark_instant",
    "parse_duration",
    "payload_as_of",
    "check_instant",
    "MIN_INSTANT",
    "MAX_INSTANT",
    "INSTANT_RANGE",
    "MAX_DURATION",
]

# One range of instants every entry point accepts (label times, as_of, run times). Every
# engine represents it and anything a bounded staleness can subtract from it (pandas'
# nanosecond timestamps end at 1677 and 2262; Spark's and Python's at years 1 and 9999).
MIN_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive
INSTANT_RANGE = "1900-01-01T00:00:00Z (inclusive) and 2200-01-01T00:00:00Z (exclusive)"
MAX_DURATION = timedelta(days=36_500)  # staleness bounds, lags


def to_utc(value: datetime | date | str) -> datetime:
    """Normalise an instant to an aware UTC datetime; naive input is UTC.

    Example:
        >>> to_utc("2026-01-02T03:04:05+01:00").isoformat()
        '2026-01-02T02:04:05+00:00'
        >>> to_utc("2026-01-02 03:04:05").isoformat()
        '2026-01-02T03:04:05+00:00'
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"not an ISO-8601 instant: {value[:64]!r} (expected e.g. 2026-01-02T03:04:05Z)"
            ) from None
        return to_utc(parsed)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise ValueError(f"instant {value.isoformat()} is outside {INSTANT_RANGE}") from None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise TypeError(f"expected datetime, date or ISO string; got {type(value).__name__}")


def check_instant(value: datetime | date | str) -> datetime:
    """:func:`to_utc`, refusing instants outside the one valid range (a ValueError naming it).

    Example:
        >>> check_instant("9999-12-31T23:59:59-05:00")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: instant 9999-12-31T23:59:59-05:00 is outside ...
    """
    instant = to_utc(value)
    if not MIN_INSTANT <= instant < MAX_INSTANT:
        shown = value if isinstance(value, str) else instant.isoformat()
        raise ValueError(f"instant {str(shown)[:64]} is outside {INSTANT_RANGE}")
    return instant


def payload_as_of(payload: Mapping[str, Any] | None, field: str | None) -> datetime | None:
    """The instant a source's answer says it was true at (its ``as_of_field``), or None when
    the field is not configured, absent or not an ISO-8601 instant. The snapshot job and the
    online path both use this, so a source's facts carry the same time offline and online."""
    value = payload.get(field) if payload is not None and field else None
    if not isinstance(value, str):
        return None
    try:
        return to_utc(value)
    except ValueError:
        return None


def format_spark_timestamp(value: datetime | date | str) -> str:
    """The UTC instant as Spark parses it in a UTC session: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return to_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def from_micros(micros: int) -> datetime:
    """Epoch microseconds (Spark's internal timestamp) to an aware UTC datetime, exactly."""
    return _EPOCH + timedelta(microseconds=int(micros))


def to_micros(value: datetime | date | str) -> int:
    """The instant as epoch microseconds (exact, no float rounding)."""
    delta = to_utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def arrow_micros(column: Any) -> Any:
    """An Arrow timestamp array (any unit, aware or naive) as epoch microseconds (int64).
    Naive values are taken as UTC: the integers are kept, as Spark's session does."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())


def spark_instant(value: datetime | date | str):
    """A Spark timestamp literal for the instant, independent of the Python process's TZ.

    (``F.lit(datetime)`` goes through the host's local zone for naive datetimes.)
    """
    from pyspark.sql import functions as F

    return F.timestamp_micros(F.lit(to_micros(value)))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|days?|hours?|minutes?|seconds?)\s*$", re.I)
_ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.I)


def parse_duration(text: str) -> timedelta:
    """'7d', '36h', '90m', '3600s' or ISO-8601 'P7D' / 'PT12H' as a timedelta.

    Example:
        >>> parse_duration("7d")
        datetime.timedelta(days=7)
    """
    if len(text) > 64:
        raise ValueError(f"not a duration: {text[:32]!r}... (too long)")
    match = _DURATION.match(text)
    iso = None if match else _ISO_DURATION.match(text.strip())
    try:
        if match:
            amount, unit = float(match.group(1)), match.group(2)[0].lower()
            duration = timedelta(
                **{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: amount}
            )
        elif iso and any(iso.groups()):
            days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
            duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        else:
            raise ValueError(f"not a duration: {text!r} (expected e.g. 7d, 36h, 90m, 3600s or P7D)")
    except OverflowError:
        duration = MAX_DURATION + timedelta(days=1)
    if duration > MAX_DURATION:
        raise ValueError(
            f"duration {text!r} is longer than the maximum of {MAX_DURATION.days} days"
        )
    return duration
