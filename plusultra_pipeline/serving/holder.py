"""Where the served model comes from, and the holder that swaps it atomically.

Two sources. `StoreSource` serves a store's cutoffs the way the `inference_frames` asset does
(`cutoff_models.load_cutoff_model`: the seed ensemble of a cutoff); reload picks the newest
complete cutoff or one named by its date -- a cutoff is resolved inside the store's layout, so a
client can never make the server open a path of its choosing. `CheckpointSource` serves one
checkpoint file given on the command line; reload re-reads that file (a retrained one at the same
path) and refuses a named cutoff.

`ModelHolder.current` is one attribute read: a request takes the model once at its start and
finishes on it, whatever a reload does meanwhile. A reload loads and checks the new model first
(off to the side, under a lock so two reloads do not interleave) and only then replaces the
reference; if loading fails the old model keeps serving and the error says so.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from plusultra_core.errors import CheckpointError
from plusultra_pipeline.serving.errors import RequestError

_CUTOFF = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class LoadedModel:
    """A restored agent plus what ``/health`` and every prediction report about it."""

    agent: object                   # MarketNNPlusUltraAgent
    source: str                     # "store" | "checkpoint"
    checkpoint: str                 # the label on the frames' ``checkpoint`` column
    checkpoint_id: str              # sha256 of the weights (of every seed's, for an ensemble)
    lineage_id: str                 # Dagster's data version of supervised_checkpoint[cutoff]
    cutoff: str | None
    members: tuple[str, ...]        # the checkpoint files (one per seed)
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def created_at(self) -> dt.datetime | None:
        """When the (first) checkpoint was written, from its sidecar."""
        raw = self.agent.sidecar.get("created_at")
        try:
            ts = dt.datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None
        return ts.replace(tzinfo=dt.timezone.utc) if ts is not None and ts.tzinfo is None else ts

    def age_seconds(self, now: dt.datetime | None = None) -> float | None:
        """Seconds since the checkpoint was written (None when the sidecar does not say)."""
        created = self.created_at
        now = now or dt.datetime.now(dt.timezone.utc)
        return None if created is None else max(0.0, (now - created).total_seconds())

    def describe(self) -> dict:
        side = self.agent.sidecar
        return {"source": self.source, "checkpoint": self.checkpoint, "checkpoint_id": self.checkpoint_id,
                "lineage_id": self.lineage_id, "cutoff": self.cutoff, "members": list(self.members),
                "architecture": side.get("architecture"), "train_range": side.get("train_range"),
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "loaded_at": self.loaded_at.isoformat(timespec="seconds")}


class StoreSource:
    """Supervised checkpoints of a store, by cutoff (every seed in ``seeds`` complete)."""

    kind = "store"

    def __init__(self, store_root, seeds: Sequence[int], **agent_kw):
        self.root = Path(store_root)
        self.seeds = tuple(seeds)
        self.agent_kw = agent_kw

    def cutoffs(self) -> list[str]:
        """Cutoffs whose supervised checkpoints are complete for every seed, oldest first."""
        from plusultra_pipeline.layout import stored_cutoffs

        return [str(c.date()) for c in stored_cutoffs(self.root, "supervised", self.seeds)]

    def resolve(self, cutoff: str | None) -> str:
        """``cutoff`` if the store holds it, else the newest; `RequestError` naming what exists."""
        stored = self.cutoffs()
        listed = ", ".join(stored[-5:]) if stored else "none"
        if cutoff is None:
            if not stored:
                raise CheckpointError(f"the store {self.root} holds no complete supervised checkpoint "
                                      f"for seeds {list(self.seeds)} (--seeds, or training.seeds of the settings); "
                                      "materialise supervised_checkpoint first")
            return stored[-1]
        if not _CUTOFF.match(cutoff):
            raise RequestError("body.cutoff", f"{cutoff!r} is not a cutoff date YYYY-MM-DD; stored cutoffs: {listed}")
        if cutoff not in stored:
            raise RequestError("body.cutoff", f"the store holds no complete supervised checkpoint for cutoff "
                                              f"{cutoff}; stored cutoffs: {listed}", status=404)
        return cutoff

    def load(self, cutoff: str | None = None) -> LoadedModel:
        from plusultra_pipeline.cutoff_models import load_cutoff_model

        key = self.resolve(cutoff)
        served = load_cutoff_model(self.root, key, self.seeds, **self.agent_kw)
        return LoadedModel(served.agent, self.kind, str(served.label), served.agent.checkpoint_id,
                           served.lineage_id, key, tuple(str(p) for p in served.paths))

    def __str__(self) -> str:
        return f"store {self.root}"


class CheckpointSource:
    """One checkpoint file, fixed at start; reload re-reads it."""

    kind = "checkpoint"

    def __init__(self, path, **agent_kw):
        self.path = Path(path)
        self.agent_kw = agent_kw

    def cutoffs(self) -> list[str]:
        return []

    def load(self, cutoff: str | None = None) -> LoadedModel:
        from plusultra_core.inference.agent import MarketNNPlusUltraAgent
        from plusultra_pipeline.events import file_version

        if cutoff is not None:
            raise RequestError("body.cutoff", f"this server serves one checkpoint ({self.path.name}, --checkpoint); "
                                              "start it with --store to reload by cutoff", status=409)
        agent = MarketNNPlusUltraAgent.from_checkpoint(self.path, **self.agent_kw)
        return LoadedModel(agent, self.kind, agent.checkpoint, agent.checkpoint_id, file_version([self.path]),
                           agent.sidecar.get("cutoff"), (str(self.path),))

    def __str__(self) -> str:
        return f"checkpoint {self.path}"


class ReloadFailed(CheckpointError):
    """A reload could not load the new model; the old one is still serving."""


class ModelHolder:
    """The served model, replaced as a whole reference on reload (see the module docstring).

    ``on_load`` runs on every new model before it is swapped in (the metrics instrument its
    forward pass there); an exception from it fails the reload like a bad checkpoint.
    """

    def __init__(self, source, on_load: Callable[[LoadedModel], None] | None = None):
        self.source = source
        self._on_load = on_load or (lambda model: None)
        self._lock = threading.Lock()
        model = source.load()
        self._on_load(model)
        self._current = model

    @property
    def current(self) -> LoadedModel:
        return self._current

    def reload(self, cutoff: str | None = None) -> tuple[LoadedModel, LoadedModel]:
        """``(new, old)``. A `RequestError` (bad or unknown cutoff) propagates; any other failure
        is a `ReloadFailed` naming the model that keeps serving."""
        with self._lock:
            old = self._current
            try:
                new = self.source.load(cutoff)
                self._on_load(new)
            except RequestError:
                raise
            except Exception as exc:  # a corrupt file fails in torch, json or our checks: all keep the old
                detail = " ".join(str(exc).split()) or type(exc).__name__
                raise ReloadFailed(f"reload failed, still serving {old.checkpoint} (cutoff {old.cutoff}, "
                                   f"lineage {old.lineage_id}): {detail}") from exc
            self._current = new  # one reference store: requests in flight keep the model they took
            return new, old
