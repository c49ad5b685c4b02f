"""timetravel: point-in-time snapshots of online facts and leakage-free training sets.

The public surface is small on purpose: :class:`TimeTravel` (features, runs, training sets,
lookups, rebuilds), the config and the errors. Import submodules for the rest:

- :mod:`timetravel.config` — profiles (``load_config``)
- :mod:`timetravel.spark` — the SparkSession factory (``get_spark``)
- :mod:`timetravel.store` — versioned Delta tables (``DeltaStore``)
- :mod:`timetravel.contexts` — the select job (``select_contexts``); :mod:`timetravel.runs`
- :mod:`timetravel.snapshot` — the snapshot job (``snapshot_facts``)
- :mod:`timetravel.asof` — the point-in-time join on Spark (``point_in_time_join``);
  :mod:`timetravel.asof_embedded` and :mod:`timetravel.embedded` — the same on DuckDB/delta-rs
- :mod:`timetravel.demo` — the simulated streaming service
- :mod:`timetravel.errors` — the error hierarchy
"""

from typing import TYPE_CHECKING, Any

from timetravel.config import Config, load_config
from timetravel.errors import ConfigError, SetupError, StoreError, TimeTravelError

if TYPE_CHECKING:
    from timetravel.facade import TimeTravel

__all__ = [
    "TimeTravel",
    "Config",
    "load_config",
    "TimeTravelError",
    "ConfigError",
    "SetupError",
    "StoreError",
    "__version__",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # TimeTravel pulls in Arrow, DuckDB and delta-rs: loaded on first use, so that
    # `import timetravel` (the CLI's start, a spark-submit job) stays light.
    if name == "TimeTravel":
        from timetravel.facade import TimeTravel

        return TimeTravel
    raise AttributeError(f"module 'timetravel' has no attribute {name!r}")
