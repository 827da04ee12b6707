"""Synthetic contract databases at any scale: a seeded, regime-switching factor model.

Dimension legend: ``T`` business days, ``N`` symbols, ``K`` sectors, ``S`` regime segments.

Model (log returns, everything drawn from one ``numpy`` generator seeded by ``seed``)::

    r[t, i] = beta_i * m[t] + gamma_i * s[t, sector(i)] + e[t, i]
    m[t]    ~ N(mu_M(z_t), sigma_M(z_t))            market factor, regime z_t in {bull, normal, crisis}
    s[t, k] ~ N(mu_S(y_tk), sigma_S * c(y_tk))      sector factor, regime y_tk in {calm, stressed}
    e[t, i] ~ N(0, sigma_i * sigma_M(z_t) / sigma_M(normal))   idiosyncratic, louder in a crisis

Regimes are Markov chains built without a per-day loop: segments get i.i.d. states and geometric
durations (mean = the state's persistence), which is the Markov chain with
``P[a, a] = 1 - q_a + q_a * pi_a`` and ``P[a, b] = q_a * pi_b``. Bars are OHLC-consistent by
construction: open = previous close times an overnight gap, close = previous close times
``exp(r)``, high/low extend the open-close body by half-normal intraday excursions, and volume is
log-normal around a per-symbol base, higher on large ``|r|`` days.

Market-wide series (as-of joined by loaders, so the join path is exercised at scale):
``SYNVIX`` (class volatility, field ``close``, lag 0) = annualised EWMA volatility of the market
factor in index points with a little noise; ``SYNCPI`` (class macro, field ``value``, lag 45 days)
= a monthly price index stamped on the first day of each month. Benchmark ``SYNTH_EW`` is the
equal-weight, daily-rebalanced index of all symbols.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plusultra_core.data.contract import ASSETS, BENCHMARKS, INDICATORS, SERIES, TABLES
from plusultra_core.data.sqlite_writer import (DatabaseWriteError, atomic_database, check_destination,
                                               table_row_counts)

# market regimes: bull, normal, crisis (daily log-return drift and volatility)
MARKET_DRIFT = np.array([0.0006, 0.0002, -0.0015])
MARKET_VOL = np.array([0.007, 0.011, 0.028])
MARKET_PERSISTENCE = np.array([250.0, 120.0, 30.0])  # mean segment length in days
MARKET_ENTRY = np.array([0.45, 0.40, 0.15])  # state probabilities of a new segment
# sector regimes: calm, stressed
SECTOR_DRIFT = np.array([0.0002, -0.0003])
SECTOR_VOL_SCALE = np.array([0.8, 1.6])
SECTOR_VOL = 0.008
SECTOR_PERSISTENCE = np.array([180.0, 60.0])
SECTOR_ENTRY = np.array([0.7, 0.3])

VIX_SYMBOL, CPI_SYMBOL, BENCHMARK_NAME = "SYNVIX", "SYNCPI", "SYNTH_EW"
CPI_LAG_DAYS = 45


@dataclass
class SynthDbSummary:
    """What `build_synthetic_database` wrote."""

    path: Path
    rows: dict[str, int]
    n_symbols: int
    n_days: int
    n_sectors: int
    seed: int
    start: pd.Timestamp
    end: pd.Timestamp
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"{self.n_symbols} symbols x {self.n_days} days {self.start.date()}..{self.end.date()}, "
                f"seed {self.seed}, {self.rows[SERIES]} bars")

    def to_text(self) -> str:
        """A short human-readable summary (the CLI prints it)."""
        return "\n".join([
            f"wrote {self.path} in {self.seconds:.1f}s",
            f"  {self.n_symbols} symbols in {self.n_sectors} sectors x {self.n_days} business days "
            f"({self.start.date()} .. {self.end.date()}), seed {self.seed}",
            "  rows: " + ", ".join(f"{k}={v}" for k, v in self.rows.items())])


@dataclass
class SynthMarket:
    """Simulated arrays, before writing. Price arrays are ``[T, N]`` float64."""

    dates: pd.DatetimeIndex  # [T] business days
    symbols: list[str]  # [N]
    sectors: list[str]  # [N]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vix: np.ndarray  # [T]
    cpi_dates: pd.DatetimeIndex  # [M] first day of each month
    cpi: np.ndarray  # [M]
    benchmark: np.ndarray  # [T]


def regime_paths(rng: np.random.Generator, n_days: int, n_chains: int,
                 persistence: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """Regime state per day for ``n_chains`` independent Markov chains: int array ``[T, C]``.

    Vectorised: ``S = n_days`` segments per chain (each lasts >= 1 day, so they always cover the
    horizon) get i.i.d. states from ``entry`` and geometric durations with mean ``persistence``.
    """
    states = rng.choice(len(entry), size=(n_days, n_chains), p=entry)  # [S, C]
    ends = np.cumsum(rng.geometric(1.0 / persistence[states]), axis=0)  # [S, C] exclusive end day
    # One searchsorted for all chains: shift chain c by c * span so the flattened ends stay sorted.
    span = int(ends[-1].max()) + 1
    offsets = np.arange(n_chains) * span  # [C]
    flat_ends = (ends + offsets).T.ravel()  # [C*S], chain-major, increasing
    days = np.arange(n_days)[:, None] + offsets  # [T, C]
    segment = np.searchsorted(flat_ends, days, side="right") - np.arange(n_chains) * n_days  # [T, C]
    return np.take_along_axis(states, segment, axis=0)


def _ewma_vol(x: np.ndarray, lam: float, init_var: float) -> np.ndarray:
    from scipy.signal import lfilter

    # var[t] = lam * var[t-1] + (1 - lam) * x[t]^2: a first-order IIR filter, no Python loop.
    var, _ = lfilter([1.0 - lam], [1.0, -lam], x ** 2, zi=[lam * init_var])
    return np.sqrt(var)


def simulate_market(n_symbols: int, n_days: int, seed: int, *, start: str | pd.Timestamp = "2000-01-03",
                    n_sectors: int = 10) -> SynthMarket:
    """Simulate the synthetic market (see module docstring); deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(pd.Timestamp(start), periods=n_days).as_unit("ns")
    width = max(4, len(str(n_symbols - 1)))
    symbols = [f"S{i:0{width}d}" for i in range(n_symbols)]
    sector_of = np.arange(n_symbols) % n_sectors  # [N] balanced, stable across seeds
    sectors = [f"sector_{k:02d}" for k in sector_of]

    z = regime_paths(rng, n_days, 1, MARKET_PERSISTENCE, MARKET_ENTRY)[:, 0]  # [T]
    y = regime_paths(rng, n_days, n_sectors, SECTOR_PERSISTENCE, SECTOR_ENTRY)  # [T, K]
    m = MARKET_DRIFT[z] + MARKET_VOL[z] * rng.standard_normal(n_days)  # [T]
    s = SECTOR_DRIFT[y] + SECTOR_VOL * SECTOR_VOL_SCALE[y] * rng.standard_normal((n_days, n_sectors))  # [T, K]

    beta = rng.uniform(0.6, 1.4, n_symbols)  # [N]
    gamma = rng.uniform(0.5, 1.2, n_symbols)
    sigma = rng.uniform(0.008, 0.02, n_symbols)
    loud = (MARKET_VOL[z] / MARKET_VOL[1])[:, None]  # [T, 1] idiosyncratic noise scales with regime
    e = sigma * loud * rng.standard_normal((n_days, n_symbols))  # [T, N]
    r = np.clip(beta * m[:, None] + gamma * s[:, sector_of] + e, -0.4, 0.4)  # [T, N]
    day_vol = beta * MARKET_VOL[z][:, None] + sigma * loud  # [T, N] rough daily sigma of each bar

    p0 = np.exp(rng.uniform(np.log(5.0), np.log(500.0), n_symbols))  # [N]
    close = p0 * np.exp(np.cumsum(r, axis=0))  # [T, N]
    prev_close = np.vstack([p0[None, :], close[:-1]])  # [T, N]
    open_ = prev_close * np.exp(0.25 * day_vol * rng.standard_normal((n_days, n_symbols)))
    body_hi, body_lo = np.maximum(open_, close), np.minimum(open_, close)
    high = body_hi * np.exp(np.abs(0.5 * day_vol * rng.standard_normal((n_days, n_symbols))))
    low = body_lo * np.exp(-np.abs(0.5 * day_vol * rng.standard_normal((n_days, n_symbols))))
    base = np.exp(rng.normal(13.0, 1.0, n_symbols))  # [N] ~ 440k shares/day median
    volume = np.round(base * np.exp(0.6 * np.abs(r) / day_vol + 0.3 * rng.standard_normal((n_days, n_symbols))))
    volume = np.maximum(volume, 1.0)

    vix = 100.0 * np.sqrt(252.0) * _ewma_vol(m, 0.94, MARKET_VOL[z[0]] ** 2)
    vix = vix * np.exp(0.03 * rng.standard_normal(n_days))  # [T] index points
    cpi_dates = pd.date_range(dates[0].to_period("M").to_timestamp(), dates[-1], freq="MS").as_unit("ns")
    cpi = 100.0 * np.exp(np.cumsum(rng.normal(0.002, 0.002, len(cpi_dates))))  # [M]
    simple = close / prev_close - 1.0
    benchmark = 1000.0 * np.cumprod(1.0 + simple.mean(axis=1))  # [T] equal weight, daily rebalanced
    return SynthMarket(dates, symbols, sectors, open_, high, low, close, volume, vix, cpi_dates, cpi, benchmark)


def _insert_sql(table: str) -> str:
    cols = TABLES[table].column_names
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


def _write(conn: sqlite3.Connection, mk: SynthMarket) -> None:
    n_days, n_symbols = mk.close.shape
    conn.executemany(_insert_sql(ASSETS), (
        [(s, f"Synthetic equity {s}", "equity", sec, "USD", "SYNTH", 1, 0) for s, sec in zip(mk.symbols, mk.sectors)]
        + [(VIX_SYMBOL, "Synthetic volatility index", "volatility", None, "USD", "SYNTH", 0, 0),
           (CPI_SYMBOL, "Synthetic consumer price index", "macro", None, "USD", "SYNTH", 0, CPI_LAG_DAYS)]))
    dates = mk.dates.strftime("%Y-%m-%d").tolist()
    # Rows in primary-key order (symbol, timestamp): [T, N] -> [N, T] so SQLite appends to its
    # index B-tree instead of inserting all over it.
    columns = [a.T.ravel().tolist() for a in (mk.open, mk.high, mk.low, mk.close, mk.volume)]
    symbols = [s for s in mk.symbols for _ in range(n_days)]
    conn.executemany(_insert_sql(SERIES), zip(symbols, dates * n_symbols, *columns))
    cpi_dates = mk.cpi_dates.strftime("%Y-%m-%d").tolist()
    conn.executemany(_insert_sql(INDICATORS), [
        *zip(dates, [VIX_SYMBOL] * n_days, ["close"] * n_days, mk.vix.tolist()),
        *zip(cpi_dates, [CPI_SYMBOL] * len(cpi_dates), ["value"] * len(cpi_dates), mk.cpi.tolist())])
    conn.executemany(_insert_sql(BENCHMARKS), zip(dates, [BENCHMARK_NAME] * n_days, mk.benchmark.tolist()))


def _check_args(n_symbols, n_days, seed, n_sectors, start) -> pd.Timestamp:
    for name, value, low in (("n_symbols", n_symbols, 1), ("n_days", n_days, 2), ("n_sectors", n_sectors, 1),
                             ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DatabaseWriteError(f"synthetic database: {name} must be an integer >= {low}, got {value!r}")
    try:
        return pd.Timestamp(start).normalize()
    except (ValueError, TypeError) as exc:
        raise DatabaseWriteError(f"synthetic database: start {start!r} is not a date ({exc})") from None


def build_synthetic_database(path: str | Path, *, n_symbols: int, n_days: int, seed: int,
                             start: str | pd.Timestamp = "2000-01-03", n_sectors: int = 10,
                             overwrite: bool = False) -> SynthDbSummary:
    """Write a synthetic contract database of ``n_symbols`` x ``n_days`` business-day bars.

    Same arguments -> identical table contents. Written atomically (see `atomic_database`).
    Raises `DatabaseWriteError` for non-positive sizes, a negative seed, a bad ``start``, an
    existing file without ``overwrite``, or a missing directory; nothing is written then.
    """
    t0 = time.perf_counter()
    start_ts = _check_args(n_symbols, n_days, seed, n_sectors, start)
    check_destination(path, overwrite=overwrite)
    market = simulate_market(int(n_symbols), int(n_days), int(seed), start=start_ts, n_sectors=int(n_sectors))
    with atomic_database(path, overwrite=overwrite) as conn:
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache: index pages stay in memory
        _write(conn, market)
        rows = table_row_counts(conn)
    return SynthDbSummary(path=Path(path), rows=rows, n_symbols=int(n_symbols), n_days=int(n_days),
                          n_sectors=int(n_sectors), seed=int(seed), start=market.dates[0], end=market.dates[-1],
                          seconds=time.perf_counter() - t0)
