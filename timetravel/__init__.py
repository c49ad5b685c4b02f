"""timetravel: point-in-time snapshots of online facts and leakage-free training sets.

The public surface is small on purpose: :class:`TimeTravel` (features, runs, training sets,
lookups, rebuilds), the config and the errors. The folders follow the flow:

- :mod:`timetravel.collect` — population -> context set (``select_contexts``) -> facts
  (``snapshot_facts``)
- :mod:`timetravel.warehouse` — table layout, S3 addressing, Delta on Spark and via
  delta-rs, the runs index, leases
- :mod:`timetravel.asof` — the point-in-time contract and its engines
- :mod:`timetravel.encoders` — versioned feature encoders
- :mod:`timetravel.training` — labels, plans, training sets and manifests
- :mod:`timetravel.runtime` — the SparkSession factory and the cached jars
- :mod:`timetravel.api`, :mod:`timetravel.cli` — the HTTP API and the terminal tool
- :mod:`timetravel.demo` — the simulated streaming service (the library never imports it)
- :mod:`timetravel.config`, :mod:`timetravel.errors`, :mod:`timetravel.times`
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
