"""Training sets: labels in (:mod:`.labels`, :mod:`.label_location`), a plan pinning every
fact table (:mod:`.plan`), the result and its manifest (:mod:`.dataset`, :mod:`.manifest`),
and the job the CLI and ``jobs/build_training_set.py`` run (:mod:`.job`)."""
