"""Configuration: frozen pydantic models loaded from a YAML profile in ``conf/``.

A profile is chosen by ``--conf PATH``, else ``$TIMETRAVEL_CONF``, else ``conf/local.yaml``
under the working directory, else the built-in defaults (identical to ``conf/local.yaml``).
String values may use ``${VAR}`` or ``${VAR:-default}`` to read the environment, so a
test or a deployment can inject an endpoint without editing the file. Relative local
paths are resolved against the working directory when the config is loaded.

Credentials never live in YAML: S3 credentials come from the standard AWS chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles).

Example:
    >>> cfg = load_config_dict({"warehouse": {"root": "/tmp/wh"}})
    >>> cfg.warehouse.root
    '/tmp/wh'
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from timetravel.errors import ConfigError

__all__ = [
    "Config",
    "SparkSettings",
    "WarehouseSettings",
    "S3Settings",
    "TableSettings",
    "DemoSettings",
    "QuerySettings",
    "ApiSettings",
    "SelectionSettings",
    "Stratum",
    "Buckets",
    "Allocation",
    "Panel",
    "SourceSettings",
    "SnapshotSettings",
    "load_config",
    "load_config_dict",
    "CONF_ENV_VAR",
]

CONF_ENV_VAR = "TIMETRAVEL_CONF"
DEFAULT_CONF_PATH = Path("conf") / "local.yaml"

_CREDENTIAL_KEYS = {
    "access_key",
    "secret_key",
    "session_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "password",
    "secret",
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SparkSettings(_Frozen):
    """How the SparkSession is built when timetravel starts Spark itself (not under
    spark-submit)."""

    master: str = "local[*]"
    app_name: str = "timetravel"
    shuffle_partitions: int = Field(default=8, ge=1)
    driver_memory: str = "4g"
    ui_enabled: bool = False
    jars_dir: str = ".cache/jars"
    log_file: str | None = Field(
        default=".cache/logs/spark.log",
        description="where Spark's own log lines go (None: Spark's default, the terminal)",
    )
    conf: dict[str, str] = Field(default_factory=dict, description="extra spark.* settings")

    @field_validator("conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in value if not k.startswith("spark."))
        if bad:
            raise ValueError(f"keys must start with 'spark.'; got {', '.join(bad)}")
        return value


class S3Settings(_Frozen):
    """An S3 endpoint reached through s3a://. Credentials come from the AWS chain, never YAML."""

    endpoint: str | None = Field(default=None, description="e.g. http://127.0.0.1:9000; None = AWS")
    path_style: bool = True
    region: str = "us-east-1"

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"expected an http:// or https:// URL with a host; got {value!r}")
        return value.rstrip("/")


class WarehouseSettings(_Frozen):
    """Where the Delta tables live: a local folder or ``s3a://bucket/prefix``."""

    root: str = "warehouse"

    @field_validator("root")
    @classmethod
    def _supported_uri(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme in ("s3", "s3n"):
            raise ValueError(f"use the s3a:// scheme (Hadoop's S3 connector); got {value!r}")
        if scheme == "s3a":
            if not urlparse(value).netloc:
                raise ValueError(f"s3a URI needs a bucket: s3a://bucket/prefix; got {value!r}")
            return value.rstrip("/")
        if scheme in ("", "file"):
            path = Path(value[len("file://") :] if scheme == "file" else value).expanduser()
            return str(path.resolve())
        raise ValueError(f"unsupported scheme {scheme!r} in {value!r}; use a local path or s3a://")

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3a://")


class TableSettings(_Frozen):
    """Delta table properties that keep time travel possible for as long as we promise."""

    # Delta 4.1+ refuses time travel older than deletedFileRetentionDuration even without
    # VACUUM, so both retentions must cover the oldest training set anyone may rebuild.
    log_retention: str = "interval 3650 days"
    deleted_file_retention: str = "interval 3650 days"
    commit_wait_s: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="on S3, how long a Spark commit waits for another writer's commit "
        "lease on the same table before failing",
    )

    @field_validator("log_retention", "deleted_file_retention")
    @classmethod
    def _interval(cls, value: str) -> str:
        if not re.fullmatch(r"interval \d+ (days|hours|weeks)", value.strip()):
            raise ValueError(f"expected 'interval N days|hours|weeks'; got {value!r}")
        return value.strip()


class DemoSettings(_Frozen):
    """The simulated streaming service (``timetravel demo ...``)."""

    seed: int = 42
    members: int = Field(default=10_000, ge=1, le=5_000_000)
    titles: int = Field(default=1_000, ge=1)
    start: str = Field(default="2026-01-01T00:00:00Z", description="first instant with events")
    days: int = Field(default=730, ge=1, description="length of the event horizon")
    history_limit: int = Field(default=20, ge=1, description="plays per viewing-history answer")
    state_dir: str = Field(default=".cache/demo-fleet", description="fleet.json, clock, logs")

    @field_validator("start")
    @classmethod
    def _instant(cls, value: str) -> str:
        from timetravel.times import to_utc

        return to_utc(value).isoformat()

    def world_args(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "members": self.members,
            "titles": self.titles,
            "start": self.start,
            "days": self.days,
            "history_limit": self.history_limit,
        }


class Buckets(_Frozen):
    """Cut a numeric column into labelled buckets, by fixed thresholds or by quantiles."""

    thresholds: list[float] | None = None
    quantiles: list[float] | None = None
    labels: list[str]

    @model_validator(mode="after")
    def _one_rule(self) -> Buckets:
        cuts = self.thresholds if self.thresholds is not None else self.quantiles
        if (self.thresholds is None) == (self.quantiles is None):
            raise ValueError("give exactly one of 'thresholds' or 'quantiles'")
        assert cuts is not None
        if list(cuts) != sorted(set(cuts)):
            raise ValueError(f"cut points must be strictly increasing; got {cuts}")
        if self.quantiles is not None and not all(0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles must be in (0, 1); got {self.quantiles}")
        if len(self.labels) != len(cuts) + 1:
            raise ValueError(
                f"{len(cuts)} cut points need {len(cuts) + 1} labels; got {len(self.labels)}"
            )
        return self


class Stratum(_Frozen):
    """One stratification variable: a population column, optionally bucketed."""

    column: str
    name: str | None = Field(default=None, description="defaults to the column name")
    buckets: Buckets | None = None

    @property
    def label(self) -> str:
        return self.name or self.column


class Allocation(_Frozen):
    """How many contexts each stratum gets.

    - ``proportional``: ``sample_size`` split in proportion to stratum sizes;
    - ``equal``: ``sample_size`` split equally;
    - ``explicit``: ``targets`` (counts) and/or ``fractions`` per stratum key
      (``"NA|tv|high"``); strata not listed get ``min_per_stratum``.
    Every stratum then gets at least ``min_per_stratum`` (never more than it has).
    """

    method: Literal["proportional", "equal", "explicit"] = "proportional"
    sample_size: int | None = Field(default=None, ge=1)
    min_per_stratum: int = Field(default=0, ge=0)
    targets: dict[str, int] = Field(default_factory=dict)
    fractions: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Allocation:
        if self.method in ("proportional", "equal") and self.sample_size is None:
            raise ValueError(f"method {self.method!r} needs sample_size")
        if self.method == "explicit" and not (self.targets or self.fractions):
            raise ValueError("method 'explicit' needs targets or fractions per stratum")
        if any(v < 0 for v in self.targets.values()):
            raise ValueError("targets must be >= 0")
        if any(not 0 <= v <= 1 for v in self.fractions.values()):
            raise ValueError("fractions must be in [0, 1]")
        return self


class Panel(_Frozen):
    """Keep a fraction of the previous run's contexts (per stratum) for longitudinal studies."""

    fraction: float = Field(ge=0, le=1)
    wait_for_previous_s: float = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="if the previous run's select is still running, wait this long for it "
        "(its sample is the panel) before failing",
    )


class SelectionSettings(_Frozen):
    """The context selection job: population, strata, allocation, seed."""

    population_table: str = "population"
    snapshot_column: str | None = Field(
        default="population_as_of",
        description="population rows are snapshots tagged with this time; the latest at or "
        "before the run time is used. None: the whole table is the population",
    )
    entity: list[str] = Field(default_factory=lambda: ["member_id"], min_length=1)
    strata: list[Stratum] = Field(default_factory=list)
    allocation: Allocation = Field(default_factory=lambda: Allocation(sample_size=1000))
    panel: Panel | None = None
    seed: int = 0
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> SelectionSettings:
        _require_unique("stratum names", [s.label for s in self.strata])
        return self


class SourceSettings(_Frozen):
    """One fact source: an HTTP JSON service (batch POST or single GET), or a Python plugin."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    base_url: str | None = Field(default=None, description="None: taken from the demo fleet file")
    batch_path: str | None = Field(
        default="/v1/members/batch", description="POST {ids_field: [...]}"
    )
    get_path: str | None = Field(default=None, description="e.g. /v1/members/{member_id}")
    ids_field: str = "member_ids"
    results_field: str = "results"
    as_of_field: str | None = Field(default="as_of", description="the service's 'true at' instant")
    key_map: dict[str, str] = Field(
        default_factory=dict, description="context column -> payload field (default same)"
    )
    schema_ddl: str = Field(alias="schema", description="Spark DDL of the payload fields kept")
    batch_size: int = Field(default=100, ge=1, le=10_000)
    timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=4, ge=0, description="extra attempts after the first")
    backoff_base_s: float = Field(default=0.2, ge=0)
    backoff_max_s: float = Field(default=5.0, ge=0)
    concurrency: int = Field(default=8, ge=1, description="in-flight requests, whole job")
    rate_limit_per_s: float | None = Field(default=None, gt=0, description="requests/s, whole job")
    min_coverage: float = Field(default=0.95, ge=0, le=1)
    plugin: str | None = Field(default=None, description="'module:Class' for non-HTTP sources")
    options: dict[str, str] = Field(default_factory=dict, description="passed to the plugin")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_way_to_fetch(self) -> SourceSettings:
        if self.plugin is None and self.batch_path is None and self.get_path is None:
            raise ValueError(f"source {self.name!r}: give batch_path, get_path or plugin")
        if self.plugin is not None and ":" not in self.plugin:
            raise ValueError(
                f"source {self.name!r}: plugin must be 'module:Class'; got {self.plugin!r}"
            )
        if self.base_url is not None:
            parsed = urlparse(self.base_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(
                    f"source {self.name!r}: base_url must be an http(s) URL; got {self.base_url!r}"
                )
        return self


class SnapshotSettings(_Frozen):
    """The snapshot job: which sources, how hard to push them, when a run has failed."""

    sources: list[SourceSettings] = Field(default_factory=list)
    fleet_file: str | None = Field(default=None, description="demo fleet.json for base URLs")
    tasks: int | None = Field(default=None, ge=1, description="Spark tasks; default parallelism")
    fail_below: float = Field(
        default=0.5, ge=0, le=1, description="a source under this coverage fails the run"
    )
    lease_ttl_s: float = Field(default=600.0, gt=0, description="a writer's lease expires after")

    @model_validator(mode="after")
    def _unique(self) -> SnapshotSettings:
        _require_unique("source names", [s.name for s in self.sources])
        return self


class QuerySettings(_Frozen):
    """Training sets, population vectors and point lookups."""

    engine: Literal["auto", "spark", "duckdb"] = Field(
        default="auto", description="auto: DuckDB while the rows to join fit embedded_max_rows"
    )
    spark_join_plan: Literal["auto", "sweep", "band"] = Field(
        default="auto",
        description="how the Spark engine joins: auto samples the keys (one scan of them, "
        "about 0.5 s at 10M rows) and takes band when every source has few snapshots per "
        "label to rank (timetravel.asof.spark_plan), else sweep; name one to skip the "
        "sample (both give the same rows; band is quadratic on a hot key)",
    )
    embedded_max_rows: int = Field(
        default=150_000_000,
        ge=0,
        description="auto picks DuckDB when label rows + fact rows read are at most this "
        "(benchmarks/pit_join.py: 100M rows join embedded in bounded memory, peaking "
        "under 4 GB, about 4x faster than local Spark; the output must fit in memory)",
    )
    embedded_memory_mb: int = Field(
        default=2_000,
        ge=64,
        le=1_048_576,
        description="DuckDB's memory limit in the embedded join; past it, it spills to disk",
    )
    spill_directory: str | None = Field(
        default=None,
        max_length=4096,
        description="where the embedded join spills (a temporary directory under it, "
        "removed after); default: the system's temporary directory",
    )
    encoders: list[str] = Field(
        default_factory=lambda: ["timetravel.demo.catalog:demo_encoders"],
        description="'module:function' returning a list of Encoders, registered in order",
    )
    lookup_cache_mb: int = Field(
        default=512,
        ge=0,
        description="decoded fact files kept in memory for point lookups "
        "(least recently used dropped first; 0: none)",
    )
    latest_version_ttl_s: float = Field(
        default=5.0,
        ge=0,
        description="how long 'the latest version' of a table is cached by "
        "lookups and plans (0: read the Delta log every time)",
    )


class ApiSettings(_Frozen):
    """The as-of query API (``timetravel serve``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    state_dir: str = Field(default=".cache/api", description="persisted training-set jobs")
    output_root: str | None = Field(
        default=None,
        description="where API training sets are written (default: <warehouse>/training_sets)",
    )
    labels_roots: list[str] = Field(
        default_factory=list, description="URI prefixes the API may read label tables from"
    )
    max_inline_labels: int = Field(
        default=10_000, ge=1, description="label rows a request may carry inline"
    )
    workers: int = Field(default=2, ge=1, description="training-set jobs run at once")
    lookup_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="threads serving point lookups (they are short "
        "and CPU-bound: about one per core)",
    )
    max_queued_jobs: int = Field(
        default=16,
        ge=0,
        description="jobs waiting for a worker; a submit beyond is answered 429 with Retry-After",
    )
    max_job_attempts: int = Field(
        default=3,
        ge=1,
        description="a job stranded by this many server restarts is failed, not resumed again",
    )
    job_memory_mb: int = Field(
        default=4096,
        ge=256,
        description="each job runs in a worker process; one whose "
        "process tree exceeds this resident memory is stopped",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="request bodies larger than this are refused (413) before parsing",
    )
    page_size_max: int = Field(default=10_000, ge=1)
    tokens_file: str | None = Field(
        default=None,
        description="YAML {reader: [...], admin: [...]} kept out of git; "
        "or set TIMETRAVEL_API_TOKENS='role:token,...'",
    )


ScheduledStage = Literal["select", "snapshot", "quality"]


def _every_stage() -> list[ScheduledStage]:
    return ["select", "snapshot"]


class ScheduleSettings(_Frozen):
    """When runs happen by themselves (``timetravel schedule``), and what a missed one means.

    Services only answer what is true now: a missed run time cannot be snapshotted in the
    past. ``catch_up`` says what to do about missed times: ``latest`` runs the most recent
    one now and records the older ones ``missed``; ``all`` runs every one now (each with its
    lag); ``none`` runs only the current time, if it is at most ``max_lag`` old.
    """

    cron: str = Field(default="0 6 * * *", description="run times, a cron expression in UTC")
    stages: list[ScheduledStage] = Field(default_factory=_every_stage, min_length=1)
    catch_up: Literal["latest", "all", "none"] = "latest"
    max_lag: str = Field(default="6h", description="a run later than this is reported late")
    start_at: datetime | None = Field(
        default=None, description="the first run time the schedule owns (default: lookback)"
    )
    lookback: str = Field(
        default="7d", description="without start_at, how far back missed times are looked for"
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        text = " ".join(value.split())
        if len(text.split()) != 5 or not croniter.is_valid(text):
            raise ValueError(
                f"not a 5-field cron expression: {value[:80]!r} (e.g. '0 6 * * *': daily 06:00 UTC)"
            )
        return text

    @field_validator("max_lag", "lookback")
    @classmethod
    def _duration(cls, value: str) -> str:
        from timetravel.times import parse_duration

        parse_duration(value)  # raises ValueError naming the problem
        return value

    @field_validator("stages")
    @classmethod
    def _stage_order(cls, value: list[str]) -> list[str]:
        _require_unique("schedule.stages", value)
        if value != sorted(value, key=["select", "snapshot", "quality"].index):
            raise ValueError(f"stages run in flow order (select, snapshot, quality); got {value}")
        return value

    @field_validator("start_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("start_at needs a UTC offset (e.g. 2026-06-01T06:00:00Z)")
        return value


class MaintenanceSettings(_Frozen):
    """``timetravel maintain``: compaction, checkpoints, and a VACUUM that spares pinned files."""

    manifest_roots: list[str] = Field(
        default_factory=list,
        description="folders searched for training-set manifest.json files whose pinned "
        "versions VACUUM must keep (besides the API's jobs and output root)",
    )
    vacuum_retain: str | None = Field(
        default=None,
        description="VACUUM files removed longer ago than this (e.g. '30d'); None: no VACUUM",
    )

    @field_validator("vacuum_retain")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        from timetravel.times import parse_duration

        if value is not None:
            parse_duration(value)  # raises ValueError naming the problem
        return value


class Threshold(_Frozen):
    """Where a measured value turns a check to ``warn`` and to ``fail``."""

    warn: float | None = None
    fail: float | None = None


class QualityCheck(_Frozen):
    """Checks on one source (and one of its fields) of every run's facts."""

    source: str
    field: str | None = Field(default=None, description="None: source-level checks only")
    min_coverage: Threshold | None = Field(
        default=None, description="contexts with a fact from the source, at least (0..1)"
    )
    max_null_rate: Threshold | None = Field(
        default=None, description="contexts whose field is missing or null, at most (0..1)"
    )
    min_value: float | None = Field(default=None, description="a smaller value fails")
    max_value: float | None = Field(default=None, description="a larger value fails")
    allowed_values: list[str] | None = Field(
        default=None, description="a categorical field's values; any other fails"
    )
    max_staleness: Threshold | None = Field(
        default=None, description="seconds from the run time to the oldest snapshot time"
    )
    max_drift: Threshold | None = Field(
        default=None,
        description="against the previous run and the reference run: PSI over the baseline's "
        "deciles for numeric fields, Jensen-Shannon distance for categorical ones",
    )

    @model_validator(mode="after")
    def _field_for_field_checks(self) -> QualityCheck:
        needs = [
            name
            for name in ("max_null_rate", "min_value", "max_value", "allowed_values", "max_drift")
            if getattr(self, name) is not None
        ]
        if needs and self.field is None:
            raise ValueError(f"check on source {self.source!r}: {', '.join(needs)} need a field")
        return self


class QualitySettings(_Frozen):
    """The quality stage: which checks run on every run's facts (besides the built-in ones:
    one fact per context and source, and no field added, removed or retyped since the
    previous run)."""

    checks: list[QualityCheck] = Field(default_factory=list)
    schema_changes: Literal["warn", "fail", "off"] = "warn"
    reference_run: str | None = Field(
        default=None, description="a pinned run that drift is also measured against"
    )


def top_level_fields(ddl: str) -> dict[str, str]:
    """``'a int, b array<struct<x:int, y:int>>'`` -> {'a': 'int', 'b': 'array<...>'}."""
    fields, depth, start = {}, 0, 0
    for i, char in enumerate(ddl + ","):
        depth += char == "<"
        depth -= char == ">"
        if char == "," and depth == 0:
            part = ddl[start:i].strip()
            if part:
                name, _, kind = part.partition(" ")
                fields[name.strip("`")] = kind.strip()
            start = i + 1
    return fields


class Config(_Frozen):
    """A whole timetravel profile."""

    profile: Literal["local", "s3", "test"] | str = "local"
    spark: SparkSettings = Field(default_factory=SparkSettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    s3: S3Settings | None = None
    tables: TableSettings = Field(default_factory=TableSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    snapshot: SnapshotSettings = Field(default_factory=SnapshotSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)

    @model_validator(mode="after")
    def _checks_name_known_fields(self) -> Config:
        sources = {s.name: top_level_fields(s.schema_ddl) for s in self.snapshot.sources}
        for check in self.quality.checks:
            if check.source not in sources:
                raise ValueError(
                    f"quality check on unknown source {check.source!r} "
                    f"(snapshot.sources: {', '.join(sorted(sources)) or 'none'})"
                )
            if check.field is not None and check.field not in sources[check.source]:
                raise ValueError(
                    f"quality check on unknown field {check.field!r} of source "
                    f"{check.source!r} (fields: {', '.join(sources[check.source])})"
                )
        return self

    @model_validator(mode="after")
    def _s3_section_for_s3_warehouse(self) -> Config:
        if self.warehouse.is_s3 and self.s3 is None:
            raise ValueError(
                "warehouse.root is s3a:// but there is no 's3' section "
                "(add s3: {endpoint: ..., region: ...}; endpoint may be null for AWS)"
            )
        return self


def _require_unique(what: str, names: list[str]) -> None:
    if len(names) != len(set(names)):
        raise ValueError(f"{what} must be unique; got {names}")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a profile: ``path``, else ``$TIMETRAVEL_CONF``, else conf/local.yaml."""
    chosen = path or os.environ.get(CONF_ENV_VAR)
    if chosen is None:
        if not DEFAULT_CONF_PATH.exists():
            return Config()
        chosen = DEFAULT_CONF_PATH
    file = Path(chosen)
    if not file.is_file():
        source = "--conf" if path else f"${CONF_ENV_VAR}"
        raise ConfigError(
            f"config file not found: {file} (from {source}); "
            f"pass an existing YAML profile such as conf/local.yaml"
        )
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    return load_config_dict(raw if raw is not None else {}, source=str(file))


def load_config_dict(raw: Any, *, source: str = "<dict>") -> Config:
    """Validate an already-parsed profile (e.g. from a test); see :func:`load_config`."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: top level must be a mapping of sections; got {type(raw).__name__}"
        )
    _reject_credentials(raw, source)
    expanded = _expand_env(raw, source, path="")
    try:
        return Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _reject_credentials(raw: Any, source: str, path: str = "") -> None:
    if isinstance(raw, dict):
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).lower() in _CREDENTIAL_KEYS:
                raise ConfigError(
                    f"{source}: {where}: credentials must not be stored in config files; "
                    "use the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                    "AWS_PROFILE or an instance role)"
                )
            _reject_credentials(value, source, where)


def _expand_env(raw: Any, source: str, path: str) -> Any:
    if isinstance(raw, dict):
        return {
            k: _expand_env(v, source, f"{path}.{k}" if path else str(k)) for k, v in raw.items()
        }
    if isinstance(raw, list):
        return [_expand_env(v, source, f"{path}[{i}]") for i, v in enumerate(raw)]
    if not isinstance(raw, str):
        return raw

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name, default)
        if value is None:
            raise ConfigError(
                f"{source}: {path}: environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}})"
            )
        return value

    return _ENV_REF.sub(substitute, raw)


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against conf/local.yaml)"
        elif "input" in err and err["type"] not in ("missing",):
            message = f"{message} (got {err['input']!r})"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)
