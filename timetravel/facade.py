"""``TimeTravel``: the one object notebooks, the CLI, the jobs and the API talk to.

Example:
    >>> from timetravel.facade import TimeTravel
    >>> tt = TimeTravel.from_config("conf/local.yaml")                  # doctest: +SKIP
    >>> [f["name"] for f in tt.features()][:3]                          # doctest: +SKIP
    >>> ts = tt.training_set(labels, features=["plays_7d", "plan"],
    ...                      max_staleness=timedelta(days=14))          # doctest: +SKIP
    >>> ts.to_pandas(); ts.write("out/ts1"); tt.rebuild(ts.manifest)     # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from timetravel import __version__
from timetravel.asof.contract import output_column, validate_staleness
from timetravel.config import Config, load_config
from timetravel.encoders import Encoder, Registry, source_alias
from timetravel.errors import (
    ConfigError,
    FeatureError,
    LabelError,
    ManifestError,
    TableNotFoundError,
)
from timetravel.times import check_instant
from timetravel.training.dataset import TrainingSet
from timetravel.training.engines import Built, TrainingEngine, is_spark_frame
from timetravel.training.manifest import (
    FeatureRef,
    LabelInfo,
    Manifest,
    SourcePin,
    config_hash,
    training_set_id,
)
from timetravel.training.plan import Plan, build_arrow
from timetravel.warehouse.deltars import FileCache, TableInfo, table_info
from timetravel.warehouse.layout import facts_table
from timetravel.warehouse.runs import RunInfo, RunsIndex

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from timetravel.warehouse.store import DeltaStore

__all__ = ["TimeTravel", "Engine", "load_registry"]

Engine = Literal["auto", "spark", "duckdb"]


def load_registry(specs: Sequence[str]) -> Registry:
    """Encoders from 'module:function' specs (each returns a list of Encoders)."""
    registry = Registry()
    for spec in specs:
        module_name, _, function = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"query.encoders: cannot load {spec!r}: {exc}") from None
        for encoder in factory():
            registry.register(encoder)
    return registry


class TimeTravel:
    """Features, runs, training sets and point lookups over one warehouse."""

    def __init__(
        self, config: Config, *, spark: SparkSession | None = None, registry: Registry | None = None
    ) -> None:
        self.config = config
        self._spark = spark
        self.registry = registry or load_registry(config.query.encoders)
        self._infos: dict[tuple[str, int | None], tuple[float, TableInfo]] = {}
        self._lookups: dict[tuple[str, int], Any] = {}
        budget = config.query.lookup_cache_mb * 1024 * 1024
        # Made here, not on first lookup: two lookup threads must share one budget.
        self._file_cache = FileCache(budget) if budget else None

    @classmethod
    def from_config(
        cls, config: Config | str | Path | None = None, *, spark: SparkSession | None = None
    ) -> TimeTravel:
        """From a profile path (default: $TIMETRAVEL_CONFIG or conf/local.yaml) or a Config."""
        loaded = config if isinstance(config, Config) else load_config(config)
        return cls(loaded, spark=spark)

    # ------------------------------------------------------------------ sessions
    @property
    def spark(self) -> SparkSession:
        """The SparkSession (started on first use: the embedded paths never need it)."""
        if self._spark is None:
            from timetravel.runtime.spark import get_spark

            self._spark = get_spark(self.config)
        return self._spark

    @property
    def store(self) -> DeltaStore:
        from timetravel.warehouse.store import DeltaStore

        return DeltaStore(self.spark, self.config)

    def _info(self, name: str, version: int | None, *, fresh: bool = True) -> TableInfo:
        """Table facts from the Delta log. A pinned version is cached for good; the latest is
        re-read unless ``fresh`` is False (lookups), which accept one up to
        ``query.latest_version_ttl_s`` old rather than re-reading the log every time."""
        now = time.monotonic()
        cached = self._infos.get((name, version))
        ttl = 0.0 if fresh else self.config.query.latest_version_ttl_s
        if cached and (version is not None or now - cached[0] < ttl):
            return cached[1]
        info = table_info(self.config, name, version)
        self._infos[(name, version)] = (now, info)
        self._infos[(name, info.version)] = (now, info)
        return info

    # ------------------------------------------------------------------ registry and runs
    def features(
        self, *, source: str | None = None, owner: str | None = None, tag: str | None = None
    ) -> list[dict[str, Any]]:
        """Current features, each with whether this warehouse can compute it (and why not)."""
        return self._features(source=source, owner=owner, tag=tag)

    def _features(
        self,
        *,
        source: str | None = None,
        owner: str | None = None,
        tag: str | None = None,
        fresh: bool = True,
    ) -> list[dict[str, Any]]:
        tables: dict[str, TableInfo | str] = {}
        out = []
        for encoder in self.registry.current(source=source, owner=owner, tag=tag):
            entry = encoder.describe()
            problem = self._unavailable(encoder, tables, fresh=fresh)
            entry["available"] = problem is None
            entry["unavailable_reason"] = problem
            out.append(entry)
        return out

    def feature(self, name: str) -> dict[str, Any]:
        """One feature's description (all its versions listed)."""
        encoder = self.registry.get(name)
        entry = encoder.describe()
        entry["versions"] = self.registry.versions(name)
        problem = self._unavailable(encoder, {})
        entry["available"], entry["unavailable_reason"] = problem is None, problem
        return entry

    def runs(self, limit: int | None = None) -> list[RunInfo]:
        """Snapshot runs, newest first (read without Spark)."""
        return RunsIndex(self.config).list(limit=limit)

    # ------------------------------------------------------------------ planning
    def plan(
        self,
        features: Sequence[str] | None = None,
        *,
        max_staleness: timedelta | Mapping[str, timedelta] | None = None,
        label_time: str = "label_time",
        pins: Mapping[str, SourcePin] | None = None,
        versions: Mapping[str, int] | None = None,
        fresh: bool = True,
    ) -> Plan:
        """Resolve features to encoders and pin every fact table they read (latest version
        unless ``pins`` say otherwise). ``features=None``: every available feature."""
        if features is None:
            encoders = [
                self.registry.get(f["name"]) for f in self._features(fresh=fresh) if f["available"]
            ]
            if not encoders:
                raise FeatureError(
                    "no feature can be computed: no fact table has been "
                    "written yet (run the select and snapshot jobs)"
                )
        elif isinstance(features, str):
            raise FeatureError("features must be a list of names, not one string")
        else:
            self.registry.resolve(features)  # every unknown name and duplicate at once
            encoders = [self.registry.get(n, (versions or {}).get(n)) for n in features]
        configured = [s.name for s in self.config.snapshot.sources]
        needed = [s for s in configured if any(s in e.reads for e in encoders)]
        needed += sorted({s for e in encoders for s in e.reads} - set(needed))
        validate_staleness(max_staleness, needed)
        tables: dict[str, TableInfo | str] = {}
        pinned: dict[str, SourcePin] = {}
        for encoder in encoders:
            problem = self._unavailable(encoder, tables, pins, fresh=fresh)
            if problem:
                raise FeatureError(f"feature {encoder.name!r} cannot be computed: {problem}")
        for source in needed:
            info = tables[source]
            assert isinstance(info, TableInfo)
            pinned[source] = SourcePin(table=info.name, version=info.version)
        staleness = {
            s: (max_staleness.get(s) if isinstance(max_staleness, Mapping) else max_staleness)
            for s in needed
        }
        entity = tuple(self.config.selection.entity)
        return Plan(tuple(encoders), pinned, entity, label_time, staleness)

    def _unavailable(
        self,
        encoder: Encoder,
        tables: dict[str, TableInfo | str],
        pins: Mapping[str, SourcePin] | None = None,
        *,
        fresh: bool = True,
    ) -> str | None:
        for source, fields in encoder.reads.items():
            if source not in tables:
                pin = (pins or {}).get(source)
                name = pin.table if pin else facts_table(source)
                try:
                    tables[source] = self._info(name, pin.version if pin else None, fresh=fresh)
                except TableNotFoundError:
                    tables[source] = (
                        f"source {source!r} has no fact table {name!r} yet "
                        "(run the snapshot job with this source)"
                    )
            info = tables[source]
            if isinstance(info, str):
                return info
            missing = [f for f in fields if f not in info.schema.names]
            if missing:
                return (
                    f"{info.name} (version {info.version}) lacks field(s) {missing} "
                    f"(columns: {', '.join(info.schema.names)})"
                )
        return None

    def online_features(
        self,
        facts: Mapping[str, Mapping[str, Any] | None],
        t: datetime | str,
        *,
        features: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Feature values for one context from live facts (``source -> payload``), with the
        same encoders the training sets use; payloads are typed by the fact tables' schemas."""
        import pyarrow as pa

        from timetravel.encoders import encode_online

        plan = self.plan(features)
        schemas = {}
        for source, pin in plan.sources.items():
            schema = self._info(pin.table, pin.version).schema
            fields = {f for e in plan.encoders for f in e.reads.get(source, ())}
            schemas[source] = pa.schema([schema.field(f) for f in schema.names if f in fields])
        as_of_fields = {s.name: s.as_of_field for s in self.config.snapshot.sources}
        return encode_online(list(plan.encoders), facts, t, schemas, as_of_fields=as_of_fields)

    # ------------------------------------------------------------------ point lookups
    def lookup(
        self,
        key: int | Mapping[str, Any],
        as_of: datetime | str,
        *,
        features: Sequence[str] | None = None,
        max_staleness: timedelta | Mapping[str, timedelta] | None = None,
    ) -> dict[str, Any]:
        """One context's feature vector as of an instant, and where each value came from.

        Embedded path: per source only the files and row groups that can hold the key (Delta
        partition and file statistics, Parquet row-group statistics) up to the instant's day
        are read; then the same as-of join and encoders as training sets.
        """
        import pyarrow as pa

        at = check_instant(as_of)
        plan = self.plan(features, max_staleness=max_staleness, fresh=False)
        entity = list(plan.entity)
        keys = dict(key) if isinstance(key, Mapping) else {entity[0]: key}
        if sorted(keys) != sorted(entity):
            raise LabelError(f"a lookup key names {sorted(keys)}; the entity is {entity}")
        labels = pa.table(
            {
                **{k: pa.array([keys[k]], self._key_type(plan, k)) for k in entity},
                plan.label_time: pa.array([at], pa.timestamp("us", tz="UTC")),
            }
        )
        row = build_arrow(
            self.config, labels, plan, reader=self._lookup_reader(keys, at, plan)
        ).to_pylist()[0]
        sources = {
            s: {
                "table": pin.table,
                "version": pin.version,
                "snapshot_time": row[output_column(source_alias(s), "snapshot_time")],
                "run_id": row[output_column(source_alias(s), "run_id")],
            }
            for s, pin in plan.sources.items()
        }
        return {
            "key": keys,
            "as_of": at,
            "features": {e.name: row[e.name] for e in plan.encoders},
            "sources": sources,
        }

    def _lookup_reader(self, keys: Mapping[str, Any], at: datetime, plan: Plan):
        from timetravel.times import to_micros
        from timetravel.warehouse.deltars import KeyLookup

        def read(name: str, version: int, columns: Sequence[str], source: str) -> pa.Table:
            lookup = self._lookups.get((name, version))
            if lookup is None:
                if len(self._lookups) >= 64:
                    self._lookups.clear()
                lookup = self._lookups[(name, version)] = KeyLookup(
                    self.config, name, version, cache=self._file_cache
                )
            bound = plan.staleness.get(source)
            floor = to_micros(at - bound) if bound is not None else None
            return lookup.rows(keys, to_micros(at), floor, columns)

        return read

    # ------------------------------------------------------------------ training sets
    def training_set(
        self,
        labels: Any,
        *,
        features: Sequence[str] | None = None,
        max_staleness: timedelta | Mapping[str, timedelta] | None = None,
        engine: Engine | None = None,
        label_time: str = "label_time",
    ) -> TrainingSet:
        """Every label row with the feature values as of its label time.

        ``labels``: pandas, Arrow, Spark, or a list of dicts; entity columns plus
        ``label_time`` (a timestamp, or ISO-8601 text; naive values are UTC).
        """
        plan = self.plan(features, max_staleness=max_staleness, label_time=label_time)
        return self._build(labels, plan, engine)

    def features_as_of(
        self,
        at: datetime | str,
        *,
        contexts: Any = None,
        features: Sequence[str] | None = None,
        max_staleness: timedelta | Mapping[str, timedelta] | None = None,
        engine: Engine | None = None,
    ) -> TrainingSet:
        """Feature vectors of many contexts as of one instant (default: every context any
        needed source has a snapshot of at or before ``at``)."""
        import pyarrow as pa

        instant = check_instant(at)
        plan = self.plan(features, max_staleness=max_staleness)
        entity = list(plan.entity)
        if contexts is None:
            keys = self._known_contexts(plan, instant)
        elif isinstance(contexts, pa.Table):
            keys = contexts.select(entity)
        else:
            try:
                keys = (
                    pa.table({entity[0]: pa.array(list(contexts), pa.int64())})
                    if len(entity) == 1 and not hasattr(contexts, "columns")
                    else pa.Table.from_pandas(contexts[entity], preserve_index=False)
                )
            except (pa.ArrowException, TypeError, ValueError, KeyError) as exc:
                raise LabelError(
                    f"contexts must be keys ({entity}) or a table of them: {exc}"
                ) from None
        labels = keys.append_column(
            plan.label_time, pa.array([instant] * keys.num_rows, pa.timestamp("us", tz="UTC"))
        )
        return self._build(labels, plan, engine)

    def _known_contexts(self, plan: Plan, at: datetime) -> pa.Table:
        import pyarrow as pa

        from timetravel.warehouse.deltars import read_table

        parts = [
            read_table(
                self.config,
                pin.table,
                version=pin.version,
                columns=[*plan.entity],
                partitions=[("snapshot_date", "<=", at.date().isoformat())],
            )
            for pin in plan.sources.values()
        ]
        keys = pa.concat_tables(parts).group_by(list(plan.entity)).aggregate([])
        return keys.sort_by([(k, "ascending") for k in plan.entity])

    def rebuild(
        self,
        manifest: Manifest | str | Path | Mapping[str, Any],
        *,
        labels: Any = None,
        engine: Engine | None = None,
    ) -> TrainingSet:
        """The training set of ``manifest`` again, from the same table versions, encoder
        versions and labels (a manifest path, JSON text, dict or Manifest)."""
        manifest = _load_manifest(self.config, manifest)
        versions = {f.name: f.version for f in manifest.features}
        plan = self.plan(
            [f.name for f in manifest.features],
            versions=versions,
            max_staleness={s: v for s, v in manifest.staleness().items() if v is not None},
            label_time=manifest.label_time,
            pins=manifest.sources,
        )
        if dict(plan.sources) != dict(manifest.sources):
            raise ManifestError(
                f"manifest sources {dict(manifest.sources)} differ from what its "
                f"features read now {dict(plan.sources)}"
            )
        if labels is None:
            if manifest.labels.uri is None:
                raise ManifestError(
                    "the manifest has no stored labels (it was never written); pass labels="
                )
            labels = self._read_stored_labels(manifest.labels.uri, engine or manifest.engine)
        rebuilt = self._build(labels, plan, engine or manifest.engine)  # type: ignore[arg-type]
        if rebuilt.manifest.labels.fingerprint != manifest.labels.fingerprint:
            raise ManifestError(
                f"labels differ from the manifest's (fingerprint "
                f"{rebuilt.manifest.labels.fingerprint} vs "
                f"{manifest.labels.fingerprint})"
            )
        return rebuilt

    def _read_stored_labels(self, uri: str, engine: str) -> Any:
        from timetravel.training.label_location import LabelLocation

        # Written by TrainingSet.write, not given by a user: no confinement to decide.
        return self.engine(engine).read_labels(LabelLocation(uri, "parquet"))

    def engine(self, name: str) -> TrainingEngine:
        """The engine called ``name`` ('spark' or 'duckdb'), over this warehouse."""
        from timetravel.training.engines import EmbeddedEngine, SparkEngine

        if name == "spark":
            return SparkEngine(self.config, self.spark, self.store)
        if name == "duckdb":
            return EmbeddedEngine(self.config, self._spark)
        raise ConfigError(f"unknown engine {name!r}; known: auto, spark, duckdb")

    def _build(self, labels: Any, plan: Plan, engine: Engine | None) -> TrainingSet:
        key_types = {k: self._key_type(plan, k) for k in plan.entity}
        chosen = self.engine(self._choose_engine(engine or self.config.query.engine, labels, plan))
        built = chosen.build(labels, plan, key_types)
        manifest = self._manifest(plan, chosen.name, built)
        return chosen.training_set(manifest, built)

    def _key_type(self, plan: Plan, key: str) -> pa.DataType:
        import pyarrow as pa

        pin = next(iter(plan.sources.values()), None)
        if pin is None:
            return pa.int64()
        return self._info(pin.table, pin.version).schema.field(key).type

    def choose_engine(self, labels: Any, plan: Plan, engine: Engine | None = None) -> str:
        """Which engine a training set would run on (see ``query.embedded_max_rows``)."""
        return self._choose_engine(engine or self.config.query.engine, labels, plan)

    def _choose_engine(self, engine: str, labels: Any, plan: Plan) -> str:
        if engine not in ("auto", "spark", "duckdb"):
            raise ConfigError(f"unknown engine {engine!r}; known: auto, spark, duckdb")
        if engine != "auto":
            return engine
        rows = labels.count() if is_spark_frame(labels) else len(labels)
        for pin in plan.sources.values():
            rows += self._info(pin.table, pin.version).rows
        return "duckdb" if rows <= self.config.query.embedded_max_rows else "spark"

    def _manifest(self, plan: Plan, engine: str, built: Built) -> Manifest:
        rows, nulls, fingerprint = built.rows, built.nulls, built.fingerprint
        features = [
            FeatureRef(name=e.name, version=e.version, output=e.output) for e in plan.encoders
        ]
        staleness = {
            s: (None if b is None else b.total_seconds()) for s, b in plan.staleness.items()
        }
        return Manifest(
            id=training_set_id(features, plan.sources, staleness, fingerprint),
            created_at=datetime.now(UTC).isoformat(),
            engine=engine,
            entity=list(plan.entity),
            label_time=plan.label_time,
            features=features,
            sources=dict(plan.sources),
            max_staleness_s=staleness,
            labels=LabelInfo(fingerprint=fingerprint, rows=rows, columns=built.label_columns),
            config_hash=config_hash(self.config),
            rows=rows,
            coverage={n: (1 - k / rows) if rows else 0.0 for n, k in nulls.items()},
            timetravel_version=__version__,
        )


def _load_manifest(config: Config, manifest: Any) -> Manifest:
    if isinstance(manifest, Manifest):
        return manifest
    if isinstance(manifest, Mapping):
        return Manifest.from_json(dict(manifest))
    text = str(manifest)
    if text.lstrip().startswith("{"):
        return Manifest.from_json(text)
    from timetravel.warehouse.files import exists, read_text

    uri = text if text.endswith(".json") else f"{text.rstrip('/')}/manifest.json"
    if not exists(config, uri):
        raise ManifestError(f"no manifest at {uri}")
    return Manifest.from_json(read_text(config, uri))
