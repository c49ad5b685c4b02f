"""Feature encoders: versioned functions of (facts, t), one implementation for every path.

- :class:`Encoder`, :class:`FactBatch` — what an encoder is and what it reads
- :class:`Registry` — encoders by name and version (old versions stay for rebuilds)
- :func:`encode_columns`, :func:`encode_batches`, :func:`encode_online` — running them over
  Arrow tables, Spark's Arrow batches, or one context's live facts

The demo fleet's catalog lives with the demo (:mod:`timetravel.demo.catalog`); profiles name
the encoders to register (``query.encoders``).
"""

from timetravel.encoders.apply import (
    arrow_type,
    encode_batches,
    encode_columns,
    encode_online,
    online_batch,
    spark_type,
)
from timetravel.encoders.base import Encoder, FactBatch, source_alias
from timetravel.encoders.registry import Registry

__all__ = [
    "Encoder",
    "FactBatch",
    "Registry",
    "source_alias",
    "encode_columns",
    "encode_batches",
    "encode_online",
    "online_batch",
    "arrow_type",
    "spark_type",
]
