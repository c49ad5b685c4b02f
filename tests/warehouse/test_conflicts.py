"""Conflict retries (no Spark): what counts as a lost race, backoff bounds, the final error."""

from __future__ import annotations

import pytest
from deltalake.exceptions import CommitFailedError

from timetravel.errors import StoreError
from timetravel.warehouse.conflicts import is_conflict, retry_conflicts


class Py4JJavaError(Exception):
    """Stands in for the class py4j raises; only its name and text are looked at."""


@pytest.mark.parametrize(
    "exc",
    [
        CommitFailedError("Transaction failed: version already exists"),
        Py4JJavaError("io.delta.exceptions.ConcurrentAppendException: [DELTA_CONCURRENT_APPEND]"),
        Py4JJavaError("io.delta.exceptions.ConcurrentTransactionException: txn conflict"),
        Py4JJavaError("io.delta.exceptions.ConcurrentDeleteReadException: files deleted"),
        Py4JJavaError("io.delta.exceptions.MetadataChangedException: metadata changed"),
        Py4JJavaError("io.delta.exceptions.ProtocolChangedException: protocol changed"),
    ],
)
def test_lost_races_are_conflicts(exc: Exception) -> None:
    assert is_conflict(exc)


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad value"), Py4JJavaError("AnalysisException: column x not found"), OSError()],
)
def test_other_errors_are_not(exc: Exception) -> None:
    assert not is_conflict(exc)


def test_retries_until_it_commits_with_bounded_growing_delays() -> None:
    calls, delays = [], []

    def action() -> int:
        calls.append(1)
        if len(calls) < 6:
            raise CommitFailedError("lost")
        return 42

    assert retry_conflicts(action, what="t", base_s=0.1, max_s=0.5, sleep=delays.append) == 42
    assert len(calls) == 6 and len(delays) == 5
    caps = [min(0.5, 0.1 * 2**i) for i in range(5)]
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))


def test_gives_up_naming_what_and_the_conflict() -> None:
    def action() -> None:
        raise CommitFailedError("version 7 already exists\nsecond line")

    with pytest.raises(StoreError, match=r"runs index: still losing .* 3 attempts .*version 7"):
        retry_conflicts(action, what="runs index", attempts=3, sleep=lambda _: None)


def test_other_errors_are_raised_at_once() -> None:
    calls = []

    def action() -> None:
        calls.append(1)
        raise ValueError("not a race")

    with pytest.raises(ValueError, match="not a race"):
        retry_conflicts(action, what="t", sleep=lambda _: None)
    assert len(calls) == 1


def test_the_final_error_names_a_conflict_with_no_message() -> None:
    def action() -> None:
        raise CommitFailedError("")

    with pytest.raises(StoreError, match=r"2 attempts \(CommitFailedError: \(no message\)\)"):
        retry_conflicts(action, what="t", attempts=2, sleep=lambda _: None)
