"""Optimistic-concurrency conflicts on shared Delta tables, retried with bounded backoff.

Delta lets writers race and rejects the loser's commit (Spark: ``ConcurrentAppendException``
and its siblings; delta-rs: ``CommitFailedError``). For the shared tables (runs index,
context sets, snapshot errors) the right answer is nearly always to re-read and try again:
the writers touch different runs, so a retry commits. ``retry_conflicts`` does that for a
callable that re-reads what it depends on each time it is called.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

from timetravel.errors import StoreError, describe_error

__all__ = ["is_conflict", "retry_conflicts"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Spark's Delta names its conflicts Concurrent*Exception (error classes DELTA_CONCURRENT_*);
# a commit file that already exists is the same race seen one level down.
_SPARK_CONFLICT = re.compile(
    r"Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write|"
    r"MetadataChange|Protocol)Exception|DELTA_CONCURRENT_|ProtocolChangedException|"
    r"MetadataChangedException"
)


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost optimistic-concurrency race (safe to retry)."""
    try:
        from deltalake.exceptions import CommitFailedError
    except ImportError:  # pragma: no cover - deltalake is a dependency
        CommitFailedError = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(exc, CommitFailedError):
        return True
    return bool(_SPARK_CONFLICT.search(f"{type(exc).__name__}: {exc}"))


def retry_conflicts(
    action: Callable[[], T],
    *,
    what: str,
    attempts: int = 12,
    base_s: float = 0.05,
    max_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``action`` until it commits; retry lost races with jittered exponential backoff.

    Anything that is not a conflict is raised at once. After ``attempts`` lost races a
    :class:`StoreError` names ``what`` and the last conflict.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            if attempt == attempts:
                raise StoreError(
                    f"{what}: still losing concurrent commits after {attempts} attempts "
                    f"({describe_error(exc)})"
                ) from None
            # Full jitter: racing writers spread out instead of colliding again in step.
            delay = random.uniform(0, min(max_s, base_s * 2 ** (attempt - 1)))
            log.info("%s: concurrent commit, retry %d in %.2fs", what, attempt, delay)
            sleep(delay)
    raise AssertionError("unreachable")
