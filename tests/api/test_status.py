"""GET /v1/status and /metrics over the API's test warehouse (snapshot runs in June 2026, the
latest failed; the default schedule, daily at 06:00 UTC over the last 7 days, has no run)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth
from timetravel.config import Config, ScheduleSettings
from timetravel.warehouse.runs import RunsIndex


@pytest.fixture(scope="module", autouse=True)
def failed_run(api_config: Config) -> None:
    RunsIndex(api_config).record("r3", "2026-06-15T06:00:00Z", "snapshot", "failed")


pytestmark = pytest.mark.spark


def test_status_names_what_is_wrong(client: TestClient) -> None:
    answer = client.get("/v1/status", headers=auth(), params={"last": 3})
    assert answer.status_code == 200, answer.text
    status = answer.json()
    assert status["healthy"] is False
    assert "the latest snapshot (r3) failed" in status["problems"]
    assert status["coverage"] == {"ratings": [0.5, 1.0], "member-profile": [1.0]}
    assert status["fetch_latency_ms"] == {"ratings": {"p50": 4.0, "p95": 9.0, "p99": 12.5}}
    snapshot = next(s for s in status["stages"] if s["stage"] == "snapshot")
    assert snapshot["last_ok_run_id"] == "r1" and snapshot["latest_run_id"] == "r3"
    # Today's (or yesterday's) 06:00 has no run: behind by exactly its age.
    newest = datetime.fromisoformat(status["newest_due"])
    assert newest.hour == 6 and newest.minute == 0
    age = (datetime.fromisoformat(status["now"]) - newest).total_seconds()
    assert status["lag_s"] == pytest.approx(age) and 0 <= age < 86400
    assert client.get("/v1/status", headers=auth(), params={"last": 0}).status_code == 422
    assert client.get("/v1/status").status_code == 401


def test_a_schedule_that_owns_no_run_time_yet_is_not_behind(
    make_client: Callable[..., TestClient], api_config: Config
) -> None:
    future = ScheduleSettings(cron="0 6 * * *", start_at="2199-01-01T06:00:00Z")  # type: ignore[arg-type]
    client = make_client(api_config.model_copy(update={"schedule": future}))
    status = client.get("/v1/status", headers=auth()).json()
    assert status["lag_s"] == 0.0 and status["newest_due"] is None
    assert status["problems"] == ["the latest snapshot (r3) failed"]  # not behind


def test_metrics_are_scraped(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401  # run data is not public
    lookup = client.get(
        "/v1/contexts/1/features", headers=auth(), params={"as_of": "2026-06-10T00:00:00Z"}
    )
    assert lookup.status_code == 200, lookup.text
    scraped = client.get("/metrics", headers=auth())
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'timetravel_run_stages{stage="snapshot",status="ok"} 1.0' in text
    assert 'timetravel_run_stages{stage="snapshot",status="partial"} 1.0' in text
    assert 'timetravel_run_stages{stage="snapshot",status="failed"} 1.0' in text
    assert 'timetravel_source_coverage{source="ratings"} 0.5' in text  # r3 has no sources
    # The newest snapshot's answer times (r2's, not r1's), in seconds.
    assert 'timetravel_fetch_latency_seconds{quantile="0.99",source="ratings"} 0.0125' in text
    assert 'timetravel_fetch_latency_seconds{quantile="0.5",source="ratings"} 0.004' in text
    assert "timetravel_schedule_healthy 0.0" in text
    assert "timetravel_lookup_seconds_count 1.0" in text
    lag = next(line for line in text.splitlines() if line.startswith("timetravel_schedule_lag"))
    now = datetime.now(UTC)
    newest = now.replace(hour=6, minute=0, second=0, microsecond=0)
    expected = (now - newest).total_seconds() % 86400
    assert float(lag.split()[1]) == pytest.approx(expected, abs=30)
