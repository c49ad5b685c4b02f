"""timetravel: point-in-time snapshots of online facts and leakage-free training sets.

The public surface is small on purpose; import submodules for the rest:

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

from timetravel.config import Config, load_config
from timetravel.errors import ConfigError, SetupError, StoreError, TimeTravelError

__all__ = [
    "Config",
    "load_config",
    "TimeTravelError",
    "ConfigError",
    "SetupError",
    "StoreError",
    "__version__",
]

__version__ = "0.1.0"
