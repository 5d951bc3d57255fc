"""Running a processor over a fileset with coffea's Runner: executors, retries, checkpoints,
dask worker set-up and the run's metrics."""
