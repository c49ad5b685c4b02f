"""Collection, in the order it happens: population -> context set -> facts.

- :mod:`.sampling` — strata, allocation, simple random samples, design weights
- :mod:`.selection` — the select job: a run's context set (``select_contexts``)
- :mod:`.fetch` — asking fact sources, inside a Spark task (async, bounded, retried)
- :mod:`.snapshot` — the snapshot job: facts into versioned Delta tables (``snapshot_facts``)
"""
