"""Reconcile executed fills with stored inference frames: the one path `plusultra reconcile` and the
`trade_reconciliation` asset share (the arithmetic is `plusultra_core.reconciliation`'s).

Inputs: the stored `inference_frames` of the decision days (and of the trading day before the
first, the paper book's starting position), the database's ``trades`` (only ``reconciliation.
strategy``'s when set), ``assets`` and closes. The realised cost the evaluation may book
(``evaluation.cost_source: realised``) is read back from the stored reconciliation partitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from plusultra_core.errors import PlusUltraError
from plusultra_pipeline.constants import INFERENCE_FRAMES, TRADE_RECONCILIATION
from plusultra_pipeline.settings import PipelineSettings

# calendar days of bars read after the last decision day: its next bar prices the opportunity cost
NEXT_BAR_PADDING_DAYS = 10
PROPOSAL_COLUMNS = ["timestamp", "symbol", "position"]


def stored_days(store) -> list[str]:
    """Decision days with a stored inference frame, sorted."""
    return sorted(p["day"] for p in store.list_partitions(INFERENCE_FRAMES))


def _frames(store, days: Sequence[str]) -> pd.DataFrame:
    parts = [{"day": d} for d in days if store.exists(INFERENCE_FRAMES, {"day": d})]
    if not parts:
        return pd.DataFrame(columns=PROPOSAL_COLUMNS)
    frame = store.read(INFERENCE_FRAMES, parts, columns=PROPOSAL_COLUMNS)
    return frame.assign(timestamp=pd.to_datetime(frame["timestamp"]).dt.normalize())


def reconcile_stored_days(settings: PipelineSettings, store, database: str | Path, days: Sequence[str]):
    """`plusultra_core.reconciliation.Reconciliation` of decision ``days`` (stored frames required)."""
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    from plusultra_core.reconciliation import reconcile_fills

    days = sorted(days)
    missing = [d for d in days if not store.exists(INFERENCE_FRAMES, {"day": d})]
    if missing:
        raise PlusUltraError(f"reconcile: no stored inference frame for {len(missing)} day(s) "
                             f"({', '.join(missing[:5])}); materialise inference_frames for them first")
    with SQLiteMarketDataset(database) as dataset:
        calendar = dataset.trading_days()
        first = pd.Timestamp(days[0])
        before = calendar[calendar < first]
        previous = _frames(store, [str(before[-1].date())]) if len(before) else None
        proposals = _frames(store, days)
        trades = dataset.trades()
        if settings.reconciliation.strategy is not None:
            trades = trades[trades["strategy"] == settings.reconciliation.strategy]
        symbols = sorted(set(proposals["symbol"]) | set(previous["symbol"] if previous is not None else []))
        start = before[-1] if len(before) else first
        panel = dataset.load_panel(symbols=symbols or None, start=start,
                                   end=pd.Timestamp(days[-1]) + pd.Timedelta(days=NEXT_BAR_PADDING_DAYS))
        closes = panel["close"].reset_index()
        known = dataset.assets()["symbol"].astype(str).tolist()
    return reconcile_fills(trades, proposals, closes, known_symbols=known, trading_days=calendar,
                           capital=settings.reconciliation.capital, cost_bps=settings.evaluation.cost_bps,
                           previous=previous, where=f"{Path(database).name}: trades")


def fill_versions(database: str | Path, days: Sequence[str]) -> dict[str, str]:
    """``decision day -> fingerprint`` of the fills (raw ``trades`` rows) that execute it, for each
    of ``days``; a day without fills gets the fingerprint of none. A fill whose decision cannot be
    named (a bad row) is in no day: reconciling any day reports it."""
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    from plusultra_core.reconciliation import attach_decisions
    from plusultra_pipeline.events import digest

    with SQLiteMarketDataset(database) as dataset:
        trades = dataset.trades()
        calendar = dataset.trading_days()
    none = digest(["fills"])
    if trades.empty:
        return dict.fromkeys(days, none)
    decided = attach_decisions(trades, calendar)["decision"].dt.strftime("%Y-%m-%d")
    text = trades.astype("string").fillna("<null>").agg("|".join, axis=1)   # every column, as stored
    rows = pd.DataFrame({"day": decided, "row": text}).sort_values(["day", "row"])
    versions = rows.groupby("day")["row"].agg(lambda r: digest(["fills", *r])).to_dict()  # one hash per day
    return {d: versions.get(d, none) for d in days}


def realised_cost_bps(store) -> tuple[float, int]:
    """Execution cost per traded notional (bps) over every stored reconciliation day, and the fills
    behind it; (NaN, 0) when none is stored or nothing traded."""
    from plusultra_core.reconciliation import Reconciliation

    if not store.list_partitions(TRADE_RECONCILIATION):
        return float("nan"), 0
    summary = Reconciliation(table=store.read(TRADE_RECONCILIATION), cost_bps=0.0).summary()
    return summary["realised_cost_bps"], summary["fills"]


def evaluation_cost_bps(settings: PipelineSettings, store) -> tuple[float, str]:
    """The one-way cost the folds book, and where it came from (for the report's metadata)."""
    configured = float(settings.evaluation.cost_bps)
    if settings.evaluation.cost_source != "realised":
        return configured, "configured"
    cost, fills = realised_cost_bps(store)
    if not np.isfinite(cost):
        raise PlusUltraError("evaluation.cost_source is 'realised' but no reconciled fill is stored; "
                             "materialise trade_reconciliation (or set cost_source: configured)")
    # a negative realised cost (fills beat the decision price) is booked as zero, never as a rebate
    return max(cost, 0.0), f"realised over {fills} fills"
