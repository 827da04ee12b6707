"""The trial ledger: every model configuration ever evaluated in a store, for the deflated Sharpe.

Selection bias grows with every configuration a researcher tries, not only with the ones on the
current leaderboard. So each fold evaluation appends, per model strategy, its out-of-sample daily
net returns under a *trial id* = hash of (architecture, config hash, seed or ``ensemble``) to
``<dir>/<trial_id>/cutoff=<date>.parquet`` (+ ``trial.json`` describing it). Re-evaluating the
same configuration overwrites its fold file (the same trial); a changed configuration is a new
trial and the old one stays. `trial_statistics` reads them back: N = the number of distinct trials
(plus any declared in config) and the variance of their per-period Sharpe ratios -- exactly the
inputs of Bailey & Lopez de Prado's deflated Sharpe ratio.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plusultra_core import atomic
from plusultra_core import metrics as M

TRIAL_FILE = "trial.json"


# Config fields that differ per cutoff, per seed or per machine but do not make another configuration.
PER_FOLD_KEYS = {("data", "train_end"), ("data", "val_end"), ("data", "db_path"), ("output_dir",), ("pretrained",),
                 ("trainer", "seed")}


def configuration_hash(config: dict) -> str:
    """Hash of a training config without its per-fold fields (split dates, paths, seed): the same
    configuration trained at every cutoff is one trial, not one per fold."""
    from plusultra_core.config import config_hash

    def strip(node, path=()):
        if not isinstance(node, dict):
            return node
        return {k: strip(v, path + (k,)) for k, v in node.items() if path + (k,) not in PER_FOLD_KEYS}

    return config_hash(strip(config))


def trial_id(architecture: str, config_hash: str, member: str) -> str:
    """Stable id of one evaluated configuration; ``member`` is ``seed=<s>`` or ``ensemble``."""
    return hashlib.sha256(f"{architecture}|{config_hash}|{member}".encode()).hexdigest()[:16]


def record_trial(directory, trial: str, description: dict, cutoff: str, daily: pd.Series) -> Path:
    """Write one fold's daily returns of one trial (atomic; replaces the same trial's fold)."""
    base = Path(directory) / trial
    target = base / f"cutoff={cutoff}.parquet"
    frame = pd.DataFrame({"date": pd.DatetimeIndex(daily.index), "return": daily.to_numpy(dtype=np.float64)})
    atomic.write_files({
        target: lambda tmp: frame.to_parquet(tmp, index=False),
        base / TRIAL_FILE: json.dumps(description, indent=2, sort_keys=True, default=str),
    })
    return target


@dataclass(frozen=True)
class TrialStatistics:
    """``n_trials`` (ledger + declared) and the variance of the trials' per-period Sharpe ratios."""

    n_trials: int
    n_recorded: int
    declared: int
    sharpe_variance: float | None   # None with fewer than 2 finite trial Sharpe ratios
    table: pd.DataFrame             # one row per recorded trial


def trial_statistics(directory, declared: int = 0) -> TrialStatistics:
    """Every recorded trial's chained record (its folds, concatenated by date) and its Sharpe."""
    rows = []
    base = Path(directory)
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        files = sorted(folder.glob("cutoff=*.parquet"))
        if not files or not (folder / TRIAL_FILE).is_file():
            continue
        record = pd.concat([pd.read_parquet(f) for f in files]).sort_values("date")
        r = record["return"].to_numpy(dtype=np.float64)
        rows.append({"trial_id": folder.name, **json.loads((folder / TRIAL_FILE).read_text()),
                     "folds": len(files), "n_days": int(r.size),
                     "sharpe_per_period": M.sharpe_ratio(r, periods_per_year=1)})
    table = pd.DataFrame(rows)
    finite = table["sharpe_per_period"].to_numpy(dtype=np.float64) if len(table) else np.zeros(0)
    finite = finite[np.isfinite(finite)]
    variance = float(finite.var(ddof=1)) if finite.size >= 2 else None
    return TrialStatistics(n_trials=max(len(table) + int(declared), 1), n_recorded=len(table),
                           declared=int(declared), sharpe_variance=variance, table=table)
