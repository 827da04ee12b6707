"""What a reviewer asks of an out-of-sample record, in one table and one sentence.

`research_summary` takes the daily net returns of every strategy (a fold's or the chained
leaderboard's), the long book, which strategy is the candidate (``primary``: the seed ensemble,
or the only model) and which are seed replicates, plus optional benchmark returns, and computes
per strategy: the Sharpe ratio with its confidence interval (Mertens/Opdyke standard error), the
Sharpe difference against buy-and-hold with a Ledoit–Wolf studentized block-bootstrap p-value,
IC and rank IC with Newey–West t-statistics, alpha / beta / information ratio / tracking error
against the benchmark, PSR and the deflated Sharpe ratio with the trial count and variance the
caller supplies (the store's trial ledger). Returns and drawdowns are in percent; annualised
return is not shown for records shorter than `SHORT_SAMPLE_DAYS` (a 20-day CAGR is noise).

The verdict is the plain first line of every report: e.g. "temporal_hybrid/ensemble did not beat
buy-and-hold: Sharpe -0.71 vs 0.26, difference -0.97 (95% CI -3.1 .. 1.2, p = 0.38) over 60 days;
not significant at 0.05."
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from plusultra_core import metrics as M
from plusultra_core.evaluation import statistics as S
from plusultra_core.evaluation.scoring import daily_turnover

SHORT_SAMPLE_DAYS = 126        # below half a year, annualised returns are not shown
BUY_AND_HOLD = "buy_and_hold"
# seed mean ± std is shown for these columns
SEED_COLUMNS = ("sharpe", "total_return_pct", "max_drawdown_pct", "ic", "turnover", "sharpe_diff_vs_bh")


@dataclass
class ResearchSummary:
    """table: strategy x statistic (display units); seeds: statistic x (mean, std, n) over the
    seed replicates; verdict: the report's first line; facts: the numbers the verdict used."""

    table: pd.DataFrame
    seeds: pd.DataFrame
    verdict: str
    primary: str
    n_days: int
    benchmark: str | None = None
    facts: dict = field(default_factory=dict)


def _pct(value: float) -> float:
    return float(value) * 100.0 if value is not None and math.isfinite(value) else math.nan


def _strategy_row(r: np.ndarray, book: pd.DataFrame, turnover: float, bh: np.ndarray | None,
                  bench: np.ndarray | None, n_trials: int, trial_variance: float | None, level: float,
                  seed: int) -> dict:
    sharpe, lo, hi = S.sharpe_confidence_interval(r, level=level)
    short = r.size < SHORT_SAMPLE_DAYS
    row = {
        "sharpe": sharpe, "sharpe_ci_low": lo, "sharpe_ci_high": hi,
        "total_return_pct": _pct(float(np.prod(1.0 + r) - 1.0) if r.size else math.nan),
        "annual_return_pct": math.nan if short else _pct(M.annual_return(r)),
        "annual_vol_pct": _pct(M.annual_volatility(r)),
        "max_drawdown_pct": _pct(M.max_drawdown(r)),
        "days": float(r.size),
    }
    exp = book["expected_return"].to_numpy(dtype=np.float64)
    real = book["realised_return"].to_numpy(dtype=np.float64)
    pos = book["position"].to_numpy(dtype=np.float64)
    row["hit_rate_pct"] = _pct(M.hit_rate(pos, real))
    row["turnover"] = turnover
    if np.isfinite(exp).sum() >= 3:
        ic = S.information_coefficient_test(exp, real, book["date"].to_numpy())
        row.update(ic=ic.ic, ic_t=ic.t_stat, rank_ic=ic.rank_ic, rank_ic_t=ic.rank_t_stat)
    else:
        row.update(ic=math.nan, ic_t=math.nan, rank_ic=math.nan, rank_ic_t=math.nan)
    if bh is not None and r.size >= 3:
        diff = S.sharpe_difference_test(r, bh, method="bootstrap", level=level, seed=seed)
        row.update(sharpe_diff_vs_bh=diff.difference, diff_ci_low=diff.ci_low, diff_ci_high=diff.ci_high,
                   p_vs_bh=diff.p_value)
    else:
        row.update(sharpe_diff_vs_bh=math.nan, diff_ci_low=math.nan, diff_ci_high=math.nan, p_vs_bh=math.nan)
    if bench is not None:
        b = S.benchmark_statistics(r, bench)
        row.update(alpha_pct=_pct(b["alpha"]), beta=b["beta"], information_ratio=b["information_ratio"],
                   tracking_error_pct=_pct(b["tracking_error"]))
    row["psr"] = M.probabilistic_sharpe_ratio(r)
    row["dsr"] = M.deflated_sharpe_ratio(r, n_trials=max(int(n_trials), 1), sharpe_variance=trial_variance)
    return row


def research_summary(daily: pd.DataFrame, positions: pd.DataFrame, primary: str,
                     model_strategies: Sequence[str] = (), *, benchmark: pd.Series | None = None,
                     n_trials: int = 1, trial_variance: float | None = None,
                     significance: float = 0.05, seed: int = 0) -> ResearchSummary:
    """Statistics of every strategy in ``daily`` and the verdict on ``primary`` (module docstring).

    ``benchmark`` is a Series of benchmark daily returns; it is aligned to ``daily``'s dates (a
    date without a benchmark return is left out of the benchmark statistics only).
    """
    level = 1.0 - significance
    bh = daily[BUY_AND_HOLD].to_numpy(dtype=np.float64) if BUY_AND_HOLD in daily.columns else None
    bench = None
    if benchmark is not None and len(benchmark):
        bench = benchmark.reindex(daily.index).to_numpy(dtype=np.float64)
    # the scoring module owns turnover (mean over days of the day's mean |position change|)
    turnover = daily_turnover(positions, daily.index, list(daily.columns)).mean()
    rows = {}
    for name in daily.columns:  # a handful of strategies; the statistics inside are vectorised
        book = positions[positions["strategy"] == name]
        rows[name] = _strategy_row(daily[name].to_numpy(dtype=np.float64), book, float(turnover[name]),
                                   None if name == BUY_AND_HOLD else bh, bench, n_trials, trial_variance,
                                   level, seed)
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("strategy")
    seeds = seed_summary(table, model_strategies)
    verdict, facts = _verdict(table, primary, seeds, len(daily), significance, n_trials)
    return ResearchSummary(table=table, seeds=seeds, verdict=verdict, primary=primary, n_days=len(daily),
                           benchmark=getattr(benchmark, "name", None), facts=facts)


def seed_summary(table: pd.DataFrame, model_strategies: Sequence[str]) -> pd.DataFrame:
    """mean, std (ddof=1) and count of `SEED_COLUMNS` over the seed replicates."""
    members = [s for s in model_strategies if s in table.index]
    cols = [c for c in SEED_COLUMNS if c in table.columns]
    part = table.loc[members, cols] if members else table.iloc[:0][cols]
    return pd.DataFrame({"mean": part.mean(), "std": part.std(ddof=1), "n": float(len(members))}
                        ).rename_axis("statistic")


def _fmt(x: float, spec: str = ".2f") -> str:
    return format(x, spec) if x is not None and math.isfinite(x) else "n/a"


def _verdict(table: pd.DataFrame, primary: str, seeds: pd.DataFrame, n_days: int, significance: float,
             n_trials: int) -> tuple[str, dict]:
    row = table.loc[primary]
    facts = {"primary": primary, "n_days": n_days, "sharpe": row["sharpe"], "significance": significance}
    if BUY_AND_HOLD in table.index and math.isfinite(row.get("p_vs_bh", math.nan)):
        bh = table.loc[BUY_AND_HOLD, "sharpe"]
        diff, p = row["sharpe_diff_vs_bh"], row["p_vs_bh"]
        significant = p < significance
        beat = diff > 0
        facts.update(buy_and_hold_sharpe=bh, difference=diff, p_value=p, significant=bool(significant),
                     beat=bool(beat and significant))
        head = (f"{primary} {'beat' if beat and significant else 'did not beat'} buy-and-hold"
                + (" (higher Sharpe, but not significantly)" if beat and not significant else ""))
        line = (f"{head}: Sharpe {_fmt(row['sharpe'])} vs {_fmt(bh)}, difference {_fmt(diff, '+.2f')} "
                f"({(1 - significance):.0%} CI {_fmt(row['diff_ci_low'], '+.2f')} .. "
                f"{_fmt(row['diff_ci_high'], '+.2f')}, p = {_fmt(p)}) over {n_days} days; "
                f"{'significant' if significant else 'not significant'} at {significance:g}.")
    else:
        lo, hi = row["sharpe_ci_low"], row["sharpe_ci_high"]
        significant = math.isfinite(lo) and (lo > 0 or hi < 0)
        facts.update(significant=bool(significant))
        line = (f"{primary}: Sharpe {_fmt(row['sharpe'])} ({(1 - significance):.0%} CI {_fmt(lo)} .. {_fmt(hi)}) "
                f"over {n_days} days; {'significantly' if significant else 'not significantly'} different from 0.")
    extra = []
    if math.isfinite(row.get("ic", math.nan)):
        extra.append(f"IC {_fmt(row['ic'], '.3f')} (Newey-West t {_fmt(row['ic_t'])})")
    if seeds["n"].max() > 1 and "sharpe" in seeds.index:
        extra.append(f"seeds: Sharpe {_fmt(seeds.at['sharpe', 'mean'])} ± {_fmt(seeds.at['sharpe', 'std'])} "
                     f"over {int(seeds.at['sharpe', 'n'])} seeds")
    extra.append(f"DSR {_fmt(row['dsr'])} with {int(n_trials)} trials")
    if n_days < SHORT_SAMPLE_DAYS:
        extra.append(f"short sample ({n_days} days): annualised figures are noisy")
    return line + " " + "; ".join(extra) + ".", facts
