"""Request and response bodies of the API (separate from storage and library types)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FeatureOut",
    "RunOut",
    "LookupOut",
    "SourceValue",
    "TrainingSetRequest",
    "JobOut",
    "RowsOut",
    "Health",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class FeatureOut(_Out):
    name: str
    version: int
    description: str
    owner: str
    output: str
    tags: list[str]
    reads: dict[str, list[str]]
    available: bool
    unavailable_reason: str | None = None
    versions: list[int] | None = None


class StageOut(_Out):
    status: str
    updated_at: datetime
    table_versions: dict[str, int]
    details: dict[str, Any]


class RunOut(_Out):
    run_id: str
    run_time: datetime
    status: dict[str, str]
    coverage: dict[str, float] = Field(description="snapshot coverage per source")
    table_versions: dict[str, int]
    stages: dict[str, StageOut] | None = None


class CheckOut(_Out):
    source: str
    field: str = Field(description="empty for a source-level check")
    check: str
    status: str = Field(description="pass | warn | fail")
    value: float | None
    expected: str


class FieldStatsOut(_Out):
    source: str
    field: str
    stratum: str = Field(description="'*' for the whole sample")
    kind: str
    contexts: int
    facts: int
    missing: int
    nulls: int
    null_rate: float
    distinct: int | None
    min: float | None
    max: float | None
    mean: float | None = Field(description="the plain sample mean")
    std: float | None
    quantiles: list[float] | None = Field(description="5, 25, 50, 75 and 95%")
    top_values: list[dict[str, Any]] | None = Field(
        description="value, count, share, and weighted_share with its weighted_se"
    )
    population: float
    weighted_mean: float | None = Field(description="the design-weighted population estimate")
    weighted_se: float | None
    weighted_quantiles: list[float] | None = Field(
        None, description="population estimates at 5, 25, 50, 75 and 95%"
    )
    weighted_quantiles_se: list[float] | None = Field(
        None, description="their standard errors (Woodruff)"
    )
    histogram: list[dict[str, Any]] | None = Field(
        None, description="20 equal bins, min to max: low, high, count, weighted (estimate)"
    )


class QualityOut(_Out):
    run_id: str
    status: str = Field(description="the quality stage: ok | warn | failed (the worst check)")
    stats_version: int | None
    checks: list[CheckOut]
    stats: list[FieldStatsOut]


class SourceValue(_Out):
    table: str
    version: int
    snapshot_time: datetime | None
    run_id: str | None


class LookupOut(_Out):
    key: dict[str, int]
    as_of: datetime
    features: dict[str, Any]
    sources: dict[str, SourceValue]


class TrainingSetRequest(BaseModel):
    """Labels inline (``labels``) or by reference (``labels_uri``, under an allowed root)."""

    model_config = ConfigDict(extra="forbid")

    labels: list[dict[str, Any]] | None = Field(
        default=None, description="rows with the entity columns and label_time (ISO-8601)"
    )
    labels_uri: str | None = Field(
        default=None, max_length=4096, description="a Parquet/CSV file or Delta table"
    )
    features: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None, max_length=10_000, description="default: every available one"
    )
    max_staleness: (
        Annotated[str, Field(max_length=1024)]
        | dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=64)]]
        | None
    ) = Field(
        default=None,
        description="'14d' for all sources, 'ratings=7d,my-list=1d', or {source: '7d'}",
    )
    engine: Literal["auto", "spark", "duckdb"] | None = None
    label_time: str = Field(default="label_time", min_length=1, max_length=256)
    format: Literal["delta", "parquet"] = "delta"


class JobOut(_Out):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    created_at: datetime
    updated_at: datetime
    progress: str
    error: str | None = None
    output_uri: str | None = None
    manifest: dict[str, Any] | None = None
    rebuild_of: str | None = None


class RowsOut(_Out):
    id: str
    total: int
    offset: int
    limit: int
    rows: list[dict[str, Any]]


class Health(_Out):
    status: str
    checks: dict[str, str] = {}


class StageStatusOut(_Out):
    stage: str
    last_ok_run_id: str | None
    last_ok_run_time: datetime | None
    latest_run_id: str | None
    latest_status: str | None


class StatusOut(_Out):
    """Run health: what `timetravel status --json` prints."""

    healthy: bool
    problems: list[str]
    now: datetime
    cron: str
    max_lag_s: float
    newest_due: datetime | None
    lag_s: float
    stages: list[StageStatusOut]
    missed: list[str]
    coverage: dict[str, list[float]]
    fetch_latency_ms: dict[str, dict[str, float]] = Field(
        description="per source, the newest snapshot's answer times (p50, p95, p99)"
    )
    runs_by_status: dict[str, int]
