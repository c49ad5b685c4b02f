import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from timetravel.times import format_spark_timestamp, from_micros, to_utc

UTC = UTC


def test_naive_datetime_is_utc() -> None:
    assert to_utc(datetime(2026, 3, 1, 12)) == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_aware_datetime_is_converted() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert to_utc(datetime(2026, 3, 1, 12, tzinfo=plus2)) == datetime(2026, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01 12:00:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00-05:00", datetime(2026, 3, 1, 17, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
    ],
)
def test_iso_strings(text: str, expected: datetime) -> None:
    assert to_utc(text) == expected


def test_date_is_midnight_utc() -> None:
    assert to_utc(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_bad_string_names_the_value() -> None:
    with pytest.raises(ValueError, match="not an ISO-8601 instant: 'yesterday'"):
        to_utc("yesterday")


def test_spark_format_is_utc_wall_clock() -> None:
    assert format_spark_timestamp("2026-03-01T12:00:00.5+01:00") == "2026-03-01 11:00:00.500000"


def test_from_micros_is_exact() -> None:
    assert from_micros(1_000_001) == datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)


def test_naive_is_utc_under_non_utc_tz() -> None:
    # A fresh interpreter so TZ takes effect for the whole process, not just after tzset().
    code = (
        "from datetime import datetime; from timetravel.times import to_utc; "
        "print(to_utc(datetime(2026, 7, 1, 12)).isoformat(), to_utc('2026-07-01 12:00').hour)"
    )
    env = {**os.environ, "TZ": "America/Los_Angeles"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["2026-07-01T12:00:00+00:00", "12"]
