"""The writer lease under contention, on local disk and on the S3 test server (no Spark).

Many contenders race for one lease (fresh, and stale: its holder died); exactly one may win,
a lease being written never reads as stale, and a holder whose lease was taken over can
neither renew nor release it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from timetravel.config import Config
from timetravel.warehouse.leases import Lease, LeaseHeldError, LeaseLostError

CONTENDERS = 8


def race(config: Config, *, ttl_s: float = 60.0) -> list[Lease]:
    """Start every contender at once; the ones that got the lease."""
    start = threading.Barrier(CONTENDERS)
    winners: list[Lease] = []
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        lease = Lease(config, "snapshot", holder=f"run-{i}", ttl_s=ttl_s)
        start.wait()
        try:
            winners.append(lease.acquire())
        except LeaseHeldError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(CONTENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return winners


def stale_lease(config: Config) -> None:
    """A lease whose holder died long ago (never released, expired)."""
    dead = Lease(config, "snapshot", holder="dead", ttl_s=0.05).acquire()
    dead._stop.set()  # the holder "dies": no renewal, no release
    time.sleep(0.1)


@pytest.mark.parametrize("rounds", [5])
def test_exactly_one_contender_wins_a_fresh_lease(warehouse_config: Config, rounds: int) -> None:
    for _ in range(rounds):
        winners = race(warehouse_config)
        assert len(winners) == 1
        winners[0].release()


@pytest.mark.parametrize("rounds", [5])
def test_exactly_one_contender_takes_over_a_stale_lease(
    warehouse_config: Config, rounds: int
) -> None:
    for _ in range(rounds):
        stale_lease(warehouse_config)
        winners = race(warehouse_config)
        assert len(winners) == 1, [w.holder for w in winners]
        winners[0].release()


def test_a_holder_that_was_taken_over_cannot_renew_or_release(warehouse_config: Config) -> None:
    slow = Lease(warehouse_config, "snapshot", holder="slow", ttl_s=0.05).acquire()
    slow._stop.set()  # stops renewing: its lease goes stale
    time.sleep(0.1)
    with Lease(warehouse_config, "snapshot", holder="next", ttl_s=60) as taker:
        assert slow.renew() is False  # a blind put would steal it back
        with pytest.raises(LeaseLostError, match="taken over by another writer"):
            slow.ensure_held()
        slow.release()  # must not delete the new holder's lease
        with pytest.raises(LeaseHeldError, match="holder 'next'"):
            Lease(warehouse_config, "snapshot", holder="third").acquire()
        taker.ensure_held()
    Lease(warehouse_config, "snapshot", holder="after").acquire().release()


def test_a_lease_being_written_is_not_taken_as_stale(local_config: Config) -> None:
    # The old code created the file empty and wrote it after: a reader in between saw no
    # valid lease, called it stale and deleted it. Writes are now whole (atomic rename).
    path = Path(local_config.warehouse.root) / "_leases" / "snapshot.json"
    stop = threading.Event()
    seen_partial: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue
            try:
                json.loads(text)
            except json.JSONDecodeError:
                seen_partial.append(text)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(200):
            lease = Lease(local_config, "snapshot", holder="w", ttl_s=60).acquire()
            assert lease.renew()
            lease.release()
    finally:
        stop.set()
        thread.join()
    assert seen_partial == []


def test_a_holder_killed_on_this_host_is_taken_over_at_once(warehouse_config: Config) -> None:
    import subprocess
    import sys

    # A process takes a long lease and dies without releasing it (as under kill -9).
    code = (
        "import os, sys; from timetravel.config import load_config_dict; "
        "from timetravel.warehouse.leases import Lease; "
        "import json; config = load_config_dict(json.loads(sys.argv[1])); "
        "Lease(config, 'scheduler', holder='doomed', ttl_s=600).acquire(); os._exit(0)"
    )
    profile = json.dumps(warehouse_config.model_dump(mode="json"))
    subprocess.run([sys.executable, "-c", code, profile], check=True, timeout=60)
    alive = Lease(warehouse_config, "scheduler", holder="alive", ttl_s=600)
    with alive:  # not refused for the 600 s its dead holder asked for
        # ...while a live holder in this process is still respected.
        with pytest.raises(LeaseHeldError, match="holder 'alive'"):
            Lease(warehouse_config, "scheduler", holder="second", ttl_s=60).acquire()
