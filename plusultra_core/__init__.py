"""plusultra core: data contract, features, windows, models, losses, metrics, training.

Nothing in this package imports Dagster; everything is usable from plain Python, a notebook, or
the `plusultra` command line.
"""

__version__ = "0.1.0"
