"""The warehouse: where every table lives and how it is read and written.

- :mod:`.layout` — table names; :mod:`.s3` — S3 addressing for every client
- :mod:`.store` — versioned Delta tables on Spark (``DeltaStore``)
- :mod:`.deltars` — the same tables read without Spark (delta-rs), point-lookup reads
- :mod:`.runs` — the runs index; :mod:`.leases` — one writer at a time
- :mod:`.files` — small files (manifests, job state) on local disk or S3
"""
