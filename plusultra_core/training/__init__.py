"""Lightning training: masked pretraining, supervised trading fine-tune, data module, checkpoints.

Import the pieces from their modules (``plusultra_core.training.runner`` etc.); this package
initialiser stays empty so importing one piece does not pull in Lightning for the others.
"""
