"""The point-in-time ("as of") join: one contract (:mod:`.contract`), three implementations —
Spark (:mod:`.spark`), DuckDB over Arrow and the one-row lookup path (:mod:`.duckdb`)."""
