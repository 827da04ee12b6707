"""The model that serves a cutoff: its seeds' supervised checkpoints as one agent.

One owner for the rule the `inference_frames` asset and `plusultra serve` both follow: a cutoff
trained with several seeds serves their ensemble (`SeedEnsemble`, mean decision) labelled by the
cutoff directory; a single seed serves its own checkpoint, labelled by its path. Its lineage id is
`events.file_version` of those files, which is the data version Dagster records for
``supervised_checkpoint[cutoff]`` (and the ``checkpoint_version`` of every inference day it served).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from plusultra_core.errors import CheckpointError
from plusultra_pipeline.events import file_version
from plusultra_pipeline.layout import checkpoint_paths, cutoff_dir, is_complete

SUPERVISED = "supervised"


@dataclass(frozen=True)
class CutoffModel:
    """A restored agent and the store facts that identify it."""

    agent: object          # MarketNNPlusUltraAgent
    cutoff: str
    paths: tuple[Path, ...]
    label: Path            # what the frames' ``checkpoint`` column records
    lineage_id: str        # = the Dagster data version of supervised_checkpoint[cutoff]


def cutoff_label(store_root, cutoff: str, paths: Sequence[Path]) -> Path:
    """The ensemble's cutoff directory, or the single checkpoint's path."""
    return cutoff_dir(store_root, SUPERVISED, cutoff) if len(paths) > 1 else Path(paths[0])


def load_cutoff_model(store_root, cutoff: str, seeds: Sequence[int], **agent_kw) -> CutoffModel:
    """Restore the agent of ``cutoff`` from the store (every seed's checkpoint must be complete).

    Raises `CheckpointError` naming the incomplete files, or whatever `load_supervised` raises for
    a corrupt one (the weights' SHA-256 against the sidecar, ``weights_only`` loading).
    """
    from plusultra_core.inference.agent import MarketNNPlusUltraAgent

    paths = checkpoint_paths(store_root, SUPERVISED, cutoff, seeds)
    missing = [str(p) for p in paths if not is_complete(p)]
    if missing:
        raise CheckpointError(f"cutoff {cutoff}: supervised checkpoints incomplete (weights or sidecar "
                              f"missing): {', '.join(missing)}")
    label = cutoff_label(store_root, cutoff, paths)
    agent = MarketNNPlusUltraAgent.from_checkpoints(paths, label=label, **agent_kw)
    return CutoffModel(agent, cutoff, tuple(paths), label, file_version(paths))
