"""One walk-forward fold: the models' out-of-sample decisions beside the baselines, net of costs.

Fold k is the out-of-sample period ``[start, end)`` = ``[C_k, C_{k+1})`` of the models trained at
cutoff ``C_k``. The fold records its *decisions* -- every in-period symbol-day with a bar, each
strategy's position and forecast, the realised next-bar return and its date
(`book.DECISION_COLUMNS`) -- and books them with `book.book_decisions`, whose module docstring
states every convention (next-bar alignment, universe, costs, missing bars, equal-weight portfolio,
realisation dates). The frame may, and should, hold bars after ``end``: the fold's last
decision day then earns the first bar after the fold.

- Strategies: one or more model strategies (e.g. one per seed), optionally their ensemble (mean
  position and mean forecast, the seed ensemble), optionally *challengers* (other models of the
  same cutoff, e.g. the RL fine-tunes, each scored as its own strategy, with their own ensemble;
  they are not seeds of the primary), the baselines, and -- when ``buy_and_hold`` is
  a baseline -- ``buy_and_hold@exposure``, a constant position equal to the primary strategy's
  average exposure over the fold (a benchmark, not a tradable rule). The primary strategy
  (``FoldResult.model_name``) is the ensemble when there is one, else the first model.
- Universe: the symbol-days where every model and challenger has a (non-NaN) position. Baselines are
  scored on exactly those symbol-days; a baseline without a view there is flat (0).
- Standalone: the fold's own book starts flat at the fold start (the entry is charged). The
  leaderboard re-books the union of all folds' decisions as one continuous book.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from plusultra_core import atomic
from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.evaluation import baselines as B
from plusultra_core.evaluation._frame import (check_period, in_period, next_bar, prepare_frame,
                                              to_ns, to_timestamp)
from plusultra_core.evaluation.book import (EXPOSURE_MATCHED, book_decisions, coverage_table,
                                            decision_frame, unpack_decisions)
from plusultra_core.evaluation.scoring import strategy_metrics

__all__ = ["FoldResult", "evaluate_fold", "DEFAULT_BASELINES", "STANDALONE"]

DEFAULT_BASELINES = ("buy_and_hold", "momentum", "linear")
PREDICTIONS = "predictions"
STANDALONE = "standalone (entry from flat at the fold start)"
_FILES = {"daily": "daily.parquet", "positions": "positions.parquet",
          "decisions": "decisions.parquet", "metrics": "metrics.csv", "meta": "fold.json"}


@dataclass
class FoldResult:
    """Out-of-sample result of one fold.

    daily:     DataFrame, index ``date`` (realisation date), one column per strategy (model
               strategies, ensemble, baselines, ``buy_and_hold@exposure``): equal-weight
               portfolio net returns of the standalone book.
    positions: long DataFrame (`scoring.POSITION_COLUMNS`): one row per strategy x active
               symbol-day with ``position``, ``change``, ``realised_return``, ``cost``, ``pnl``.
    metrics:   DataFrame strategy x metric (`scoring.METRIC_COLUMNS`).
    decisions: long DataFrame (`book.DECISION_COLUMNS`): one row per booked strategy (not the
               derived ``buy_and_hold@exposure``) x in-period symbol-day with a bar; what the
               leaderboard re-books.
    period:    ``(start, end)`` of the half-open decision period ``[start, end)``.
    cost_bps:  one-way cost per unit of position change, in basis points.
    model_name: the primary strategy (the ensemble when present, else the first model).
    model_strategies: the model strategies (one per seed), for mean +- std across seeds.
    ensemble_name: the seed ensemble's strategy name, or None.
    info:      JSON-able facts: booking, coverage, exposure, baselines and their settings, counts.
    """

    daily: pd.DataFrame
    positions: pd.DataFrame
    metrics: pd.DataFrame
    decisions: pd.DataFrame
    period: tuple[pd.Timestamp, pd.Timestamp]
    cost_bps: float
    model_name: str = "model"
    model_strategies: list[str] = field(default_factory=list)
    ensemble_name: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def strategies(self) -> list[str]:
        """Strategy names in column order: models, ensemble, baselines, derived."""
        return list(self.daily.columns)

    @property
    def booked_strategies(self) -> list[str]:
        """The strategies with decisions (all but the derived ``buy_and_hold@exposure``)."""
        return [s for s in self.strategies if s != EXPOSURE_MATCHED]

    def to_files(self, directory) -> list[Path]:
        """Write ``daily.parquet``, ``positions.parquet``, ``decisions.parquet``, ``metrics.csv``
        and ``fold.json``; all are staged under temp names and renamed once every one is written.
        """
        return atomic.write_files(self.file_writers(directory))

    def file_writers(self, directory) -> dict[Path, atomic.Payload]:
        """``final path -> payload`` of the `to_files` files (for combined `atomic.write_files`)."""
        directory = Path(directory)
        meta = {"period": [str(self.period[0]), str(self.period[1])], "cost_bps": self.cost_bps,
                "model_name": self.model_name, "model_strategies": self.model_strategies,
                "ensemble_name": self.ensemble_name, "strategies": self.strategies,
                "info": self.info, "files": _FILES}

        def parquet(df: pd.DataFrame):
            return lambda tmp: df.to_parquet(tmp, index=True)

        return {
            directory / _FILES["daily"]: parquet(self.daily),
            directory / _FILES["positions"]: parquet(self.positions.reset_index(drop=True)),
            directory / _FILES["decisions"]: parquet(self.decisions.reset_index(drop=True)),
            directory / _FILES["metrics"]: self.metrics.to_csv(),
            directory / _FILES["meta"]: json.dumps(meta, indent=2, default=str),
        }

    @classmethod
    def from_files(cls, directory) -> "FoldResult":
        """Read back what `to_files` wrote; a missing file is a DataValidationError naming it."""
        directory = Path(directory)
        for key, name in _FILES.items():
            if not (directory / name).is_file():
                raise DataValidationError(f"fold result: {directory / name} is missing",
                                          table="fold_result", column=key, check="files_present")
        meta = json.loads((directory / _FILES["meta"]).read_text())
        daily = pd.read_parquet(directory / _FILES["daily"])
        daily.columns.name = "strategy"
        daily.index = pd.DatetimeIndex(daily.index, name="date").as_unit("ns")
        metrics = pd.read_csv(directory / _FILES["metrics"], index_col="strategy")
        return cls(daily=daily, positions=pd.read_parquet(directory / _FILES["positions"]),
                   metrics=metrics, decisions=pd.read_parquet(directory / _FILES["decisions"]),
                   period=(pd.Timestamp(meta["period"][0]), pd.Timestamp(meta["period"][1])),
                   cost_bps=float(meta["cost_bps"]), model_name=meta["model_name"],
                   model_strategies=list(meta.get("model_strategies") or [meta["model_name"]]),
                   ensemble_name=meta.get("ensemble_name"), info=meta.get("info", {}))


def _check_predictions(predictions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                       table: str = PREDICTIONS) -> pd.DataFrame:
    """Predictions decided in ``[start, end)``, validated (keys, finite positions in [-1, 1])."""
    if not isinstance(predictions, pd.DataFrame):
        raise DataValidationError(f"{table}: expected a DataFrame, got {type(predictions).__name__}",
                                  table=table, check="type")
    missing = [c for c in ("timestamp", "symbol", "position") if c not in predictions.columns]
    if missing:
        raise DataValidationError(f"{table}: missing columns {missing}", table=table,
                                  column=missing[0], check="columns_present")
    pred = pd.DataFrame({
        "timestamp": to_ns(predictions["timestamp"], table),
        "symbol": predictions["symbol"].astype(str),
        "position": pd.to_numeric(predictions["position"], errors="coerce").astype(np.float64),
        "expected_return": (pd.to_numeric(predictions["expected_return"], errors="coerce").astype(np.float64)
                            if "expected_return" in predictions.columns else np.nan),
    })
    pred = pred[(pred["timestamp"] >= start) & (pred["timestamp"] < end)]
    # NaN = no decision on that row (same as no row); anything else must be a real position.
    bad = pred["position"].notna() & ~pred["position"].between(-1.0, 1.0)
    if bad.any():
        raise DataValidationError(
            f"{table}: {int(bad.sum())} positions are not finite numbers in [-1, 1], first "
            f"{pred.loc[bad, 'position'].iloc[0]!r} at {tuple(pred.loc[bad, ['symbol', 'timestamp']].iloc[0])}",
            table=table, column="position", check="in_range", failure_cases=pred[bad].head(5))
    dup = pred.duplicated(["symbol", "timestamp"], keep=False)
    if dup.any():
        raise DataValidationError(
            f"{table}: {int(dup.sum())} rows share a (symbol, timestamp) key",
            table=table, column="timestamp", check="unique_keys", failure_cases=pred[dup].head(5))
    return pred.reset_index(drop=True)


def _scatter(frame_keys: pd.MultiIndex, rows: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
    """[N] position and expected_return of ``rows`` placed on the frame's rows (NaN elsewhere)."""
    idx = frame_keys.get_indexer(pd.MultiIndex.from_arrays([rows["symbol"], rows["timestamp"]]))
    unknown = idx < 0
    if unknown.any():
        raise DataValidationError(
            f"{what}: {int(unknown.sum())} rows have no bar in the window frame, first "
            f"{tuple(rows.loc[unknown, ['symbol', 'timestamp']].iloc[0])}",
            table=what, column="symbol", check="rows_in_frame", failure_cases=rows[unknown].head(5))
    pos = np.full(len(frame_keys), np.nan)
    exp = np.full(len(frame_keys), np.nan)
    pos[idx] = rows["position"].to_numpy(dtype=np.float64)
    exp[idx] = rows["expected_return"].to_numpy(dtype=np.float64)
    return pos, exp


def _baseline_rows(name: str, frame: pd.DataFrame, start, end, feature_names, train_end, purge,
                   momentum_lookback: int, ridge: float, linear_sizing: str, info: dict) -> pd.DataFrame:
    if name == "buy_and_hold":
        return B.buy_and_hold(frame, start, end)
    if name == "momentum":
        info["momentum"] = {"lookback": momentum_lookback}
        return B.momentum_rule(frame, start, end, lookback=momentum_lookback)
    if train_end is None or not feature_names:
        raise ConfigError("evaluate_fold: the 'linear' baseline needs feature_names and train_end")
    if to_timestamp(train_end, "train_end") > start:
        raise ConfigError(f"evaluate_fold: train_end {train_end} is after the fold start {start}")
    fit = B.fit_linear(frame, feature_names, train_end, purge, ridge)
    info["linear"] = {"n_train": fit.n_train, "last_target_time": str(fit.last_target_time),
                      "train_end": str(train_end), "purge_bars": int(purge), "ridge": ridge,
                      "sizing": linear_sizing, "scale": fit.scale,
                      "coef": dict(zip(fit.feature_names, map(float, fit.coef))),
                      "intercept": fit.intercept}
    return B.apply_linear(frame, fit, start, end, linear_sizing)


def _model_predictions(predictions, model_name: str) -> dict[str, pd.DataFrame]:
    """``{strategy: predictions}``: one DataFrame is the single model ``model_name``."""
    if isinstance(predictions, Mapping):
        models = dict(predictions)
        if not models:
            raise ConfigError("evaluate_fold: the predictions mapping is empty")
        bad = [k for k in models if not (isinstance(k, str) and k)]
        if bad:
            raise ConfigError(f"evaluate_fold: model strategy names must be non-empty strings, got {bad}")
        return models
    return {model_name: predictions}


def _check_args(cost_bps, baselines: Sequence[str], models: list[str],
                ensemble_name: str | None) -> tuple[str, ...]:
    if not (isinstance(cost_bps, (int, float)) and math.isfinite(cost_bps) and cost_bps >= 0):
        raise ConfigError(f"evaluate_fold: cost_bps must be a finite number >= 0, got {cost_bps!r}")
    baselines = tuple(baselines)
    unknown = [b for b in baselines if b not in B.BASELINES]
    if unknown:
        raise ConfigError(f"evaluate_fold: unknown baselines {unknown}; known: {sorted(B.BASELINES)}")
    if len(set(baselines)) != len(baselines):
        raise ConfigError(f"evaluate_fold: baselines listed twice: {list(baselines)}")
    if ensemble_name is not None and not (isinstance(ensemble_name, str) and ensemble_name):
        raise ConfigError(f"evaluate_fold: ensemble_name must be a non-empty string, got {ensemble_name!r}")
    taken = set(baselines) | {EXPOSURE_MATCHED}
    for name in [*models, *([ensemble_name] if ensemble_name else [])]:
        if not name or name in taken:
            raise ConfigError(f"evaluate_fold: strategy name {name!r} is empty, a baseline's name "
                              "or used twice")
        taken.add(name)
    return baselines


def _jsonable(value):
    """A coverage cell as a plain JSON value (dates as ISO strings, numpy scalars as Python)."""
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return value.item() if isinstance(value, np.generic) else value


def _realisation_dates(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """[R] the calendar's next bar after each row's timestamp (NaT when the frame ends first);
    the calendar is every timestamp in the frame, so money is dated when it is made."""
    ts = frame["timestamp"].to_numpy()
    calendar = np.unique(ts)
    j = np.searchsorted(calendar, ts[rows], side="right")
    return np.where(j < calendar.size, calendar[np.minimum(j, calendar.size - 1)],
                    np.datetime64("NaT", "ns")).astype("datetime64[ns]")


def evaluate_fold(predictions: pd.DataFrame | Mapping[str, pd.DataFrame], frame: pd.DataFrame,
                  start, end, *, cost_bps: float, baselines: Sequence[str] = DEFAULT_BASELINES,
                  feature_names: Sequence[str] | None = None, train_end=None, purge: int = 0,
                  model_name: str = "model", ensemble_name: str | None = None,
                  challengers: Mapping[str, pd.DataFrame] | None = None, challenger_ensemble: str | None = None,
                  momentum_lookback: int = 20, ridge: float = 1.0, linear_sizing: str = "scaled",
                  periods_per_year: int = 252) -> FoldResult:
    """Score model strategies and the baselines on the fold ``[start, end)``, net of costs.

    Args:
        predictions: one DataFrame (the model ``model_name``) or ``{strategy: DataFrame}`` (e.g.
            one per seed, ``"temporal_hybrid/seed=0"``), each ``[timestamp, symbol, position
            (in [-1, 1], NaN = no decision), expected_return (optional)]``; rows outside
            ``[start, end)`` are ignored, rows whose (symbol, timestamp) is not in ``frame`` are
            an error.
        frame: window frame ``[timestamp, symbol, <features>, ret_1d, valid]`` holding the history
            the baselines need and the bars after ``end`` that the last days' outcomes need.
        cost_bps: one-way cost per unit of |position change|, in basis points.
        baselines: any of ``"buy_and_hold"``, ``"momentum"``, ``"linear"``.
        feature_names, train_end, purge: the linear baseline's inputs, cutoff and embargo (bars).
        model_name: the model's strategy name when ``predictions`` is one DataFrame.
        ensemble_name: when given, add the seed ensemble under this name: position and
            expected_return are the mean over the model strategies. It becomes the primary.
        challengers: ``{strategy: predictions}`` of other models scored beside the primary on the
            same universe (e.g. ``"temporal_hybrid/rl/seed=0"``); not part of the seed ensemble.
        challenger_ensemble: when given, add the challengers' mean under this name.

    Returns:
        FoldResult (see the module docstring and `book` for every convention).

    Raises:
        DataValidationError: malformed frame or predictions, or no prediction with a known outcome.
        ConfigError: bad cost, unknown baseline, clashing names, ``end <= start``,
            ``train_end > start``.
    """
    models = _model_predictions(predictions, model_name)
    model_names = list(models)
    rivals = dict(challengers or {})
    if challenger_ensemble is not None and not rivals:
        raise ConfigError("evaluate_fold: challenger_ensemble is set but there are no challengers")
    named = [*model_names, *rivals, *([challenger_ensemble] if challenger_ensemble else [])]
    baselines = _check_args(cost_bps, baselines, named, ensemble_name)
    start, end = check_period(start, end)
    feature_names = list(feature_names or [])
    frame = prepare_frame(frame, feature_names if "linear" in baselines else ())
    keys = pd.MultiIndex.from_arrays([frame["symbol"], frame["timestamp"]])
    single = not isinstance(predictions, Mapping)
    model_pos, model_exp = [], []
    for name, preds in models.items():  # a few seeds
        table = PREDICTIONS if single else f"{PREDICTIONS}[{name}]"
        p, e = _scatter(keys, _check_predictions(preds, start, end, table), table)
        model_pos.append(p)
        model_exp.append(e)
    rival_pos, rival_exp = [], []
    for name, preds in rivals.items():  # a few seeds
        table = f"{PREDICTIONS}[{name}]"
        p, e = _scatter(keys, _check_predictions(preds, start, end, table), table)
        rival_pos.append(p)
        rival_exp.append(e)

    realised, realised_at = next_bar(frame)
    period = in_period(frame, start, end)
    universe = period & np.isfinite(np.stack(model_pos + rival_pos)).all(axis=0)  # [N] every model decided
    evaluated = period & ~np.isnat(realised_at)                      # [N] outcome known
    if not (universe & evaluated).any():
        raise DataValidationError(
            f"{PREDICTIONS}: no position in [{start.date()}, {end.date()}) has a known next-bar "
            f"return ({int(universe.sum())} positions, {int(evaluated.sum())} evaluable bars)",
            table=PREDICTIONS, column="position", check="evaluable_rows")

    primary = ensemble_name or model_names[0]
    info: dict = {"model_name": primary, "model_strategies": model_names,
                  "ensemble_name": ensemble_name, "baselines": list(baselines), "booking": STANDALONE}
    strategies = list(model_names)
    pos, exp = list(model_pos), list(model_exp)                      # S x [N], raw views
    if ensemble_name:
        strategies.append(ensemble_name)
        pos.append(np.where(universe, np.mean(model_pos, axis=0), np.nan))
        exp.append(np.where(universe, np.mean(model_exp, axis=0), np.nan))
    strategies += list(rivals)
    pos += rival_pos
    exp += rival_exp
    if challenger_ensemble:
        strategies.append(challenger_ensemble)
        pos.append(np.where(universe, np.mean(rival_pos, axis=0), np.nan))
        exp.append(np.where(universe, np.mean(rival_exp, axis=0), np.nan))
    if rivals:
        info.update(challengers=list(rivals), challenger_ensemble=challenger_ensemble)
    for name in baselines:
        b_rows = _baseline_rows(name, frame, start, end, feature_names, train_end, purge,
                                momentum_lookback, ridge, linear_sizing, info)
        b_pos, b_exp = _scatter(keys, b_rows, name)
        strategies.append(name)
        pos.append(b_pos)
        exp.append(b_exp)

    rows = np.flatnonzero(period)                                    # [K] in-period symbol-days
    decisions = decision_frame(
        frame["timestamp"].to_numpy()[rows], frame["symbol"].to_numpy()[rows], universe[rows],
        realised[rows], realised_at[rows], _realisation_dates(frame, rows), strategies,
        np.stack(pos)[:, rows], np.stack(exp)[:, rows])
    panel = unpack_decisions(decisions, strategies)
    booked = book_decisions(panel, cost_bps, primary=primary)
    metrics = strategy_metrics(booked.daily, booked.positions, periods_per_year)
    coverage = coverage_table(panel, [(start, end)]).iloc[0].to_dict()
    info.update({"n_predictions": int(universe.sum()),
                 "n_evaluated": int((universe & evaluated).sum()),
                 "n_unevaluated_no_next_bar": int((universe & ~evaluated).sum()),
                 "n_symbols": int(frame.loc[universe, "symbol"].nunique()),
                 "coverage": {k: _jsonable(v) for k, v in coverage.items()}})
    if booked.exposure is not None:
        info["exposure"] = {"strategy": EXPOSURE_MATCHED, "of": primary, "position": booked.exposure,
                            "note": "the primary's mean net position over the fold's scored universe "
                                    "symbol-days (a benchmark, not a tradable rule)"}
    return FoldResult(daily=booked.daily, positions=booked.positions, metrics=metrics,
                      decisions=decisions, period=(start, end), cost_bps=float(cost_bps),
                      model_name=primary, model_strategies=model_names, ensemble_name=ensemble_name,
                      info=info)
