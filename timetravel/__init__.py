"""timetravel: point-in-time snapshots of online facts and leakage-free training sets.

The public surface is small on purpose; import submodules for the rest:

- :mod:`timetravel.config` — profiles (``load_config``)
- :mod:`timetravel.spark` — the SparkSession factory (``get_spark``)
- :mod:`timetravel.store` — versioned Delta tables (``DeltaStore``)
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
