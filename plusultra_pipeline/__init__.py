"""plusultra's orchestration: Dagster assets, partitions, resources, checks, schedules, sensors.

Import `plusultra_pipeline.definitions` for the `Definitions` object; importing this package alone
does not import Dagster (the CLI's data and training commands stay fast).
"""
