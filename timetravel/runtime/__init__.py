"""The Spark runtime: the session factory (:mod:`.spark`) and the cached Delta/S3A jars
(:mod:`.jars`)."""
