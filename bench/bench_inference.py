"""Daily inference benchmark: one trading day, every symbol, end to end from the SQLite file.

Setup (in the parent, not timed): a synthetic database (`build_synthetic_database`) and a
reference-size checkpoint — ``temporal_hybrid`` width 128, 4 layers, context 128, 28 scale-free
features, policy head — with untrained weights (timing does not care), saved by `save_checkpoint`
with a full sidecar so `load_supervised` rebuilds it like a trained one.

Measured, each in a forked child (``bench.common.measure``):
- *end to end* (the timed part of the child, not its stage split):
  ``MarketNNPlusUltraAgent.from_checkpoint(ckpt).predict(db, last_day)``: restore,
  one validated bulk read with the history padding, features, window frame, predictions, risk
  analytics, data version (hash of the rows read). The child also reports its stage split.
- *model forward*: the same module on the same ``[S, 128, F]`` windows (gathered beforehand),
  under ``torch.inference_mode``: the floor any inference path pays.
The ratio end-to-end / forward is the overhead multiple (goal <= 3x).

``python -m bench.bench_inference --symbols 100`` runs a reduced scale.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import BenchResult, measure, print_results, scale_parser

FEATURES = ["ret_1d", "logret_1d", "ret_overnight", "ret_intraday", "mom_5", "mom_20", "mom_60", "mom_120",
            "vol_std_20", "vol_std_60", "vol_ratio_20_60", "vol_parkinson_20", "atr_14", "bb_pctb_20",
            "bb_width_20", "sma_ratio_20", "sma_ratio_50", "sma_ratio_200", "ema_cross_12_26", "rsi_14",
            "macd_hist", "stoch_k_14", "logvol_z_20", "volume_ratio_20", "skew_60", "kurt_60",
            "cal_dow_sin", "cal_dow_cos"]
MODEL = {"d_model": 128, "n_layers": 4, "n_heads": 4, "dilations": [1, 2, 4, 8], "dropout": 0.0}
CONTEXT, HORIZON = 128, 5
THREADS = 1  # both timings single-threaded: on a shared 2-core box two threads spin-wait and add noise


def build_checkpoint(path: Path, db_path: Path) -> Path:
    """Untrained reference-size supervised checkpoint with a sidecar like `run_training` writes."""
    import torch

    from plusultra_core.config import to_dict
    from plusultra_core.heads import HeadConfig
    from plusultra_core.losses import LossConfig
    from plusultra_core.training.checkpoints import feature_hash, save_checkpoint
    from plusultra_core.training.config import ModelConfig, OptimConfig, build_model_config
    from plusultra_core.training.supervised_module import SupervisedTradingModule

    torch.manual_seed(0)
    model_cfg = build_model_config(ModelConfig("temporal_hybrid", dict(MODEL)))
    head, loss = HeadConfig(kind="policy"), LossConfig()
    module = SupervisedTradingModule(model_cfg, "temporal_hybrid", len(FEATURES), HORIZON, head, loss, OptimConfig())
    for p in module.head.parameters():  # the zero-initialised last layer would give constant outputs
        torch.nn.init.normal_(p, std=0.02)
    side = {"kind": "supervised", "architecture": "temporal_hybrid", "model_config": to_dict(model_cfg),
            "config": {"data": {"db_path": str(db_path)}}, "feature_names": FEATURES,
            "feature_hash": feature_hash(FEATURES), "n_features": len(FEATURES), "context_length": CONTEXT,
            "horizon": HORIZON, "zscore": False, "return_column": "ret_1d",
            "head_config": to_dict(head), "loss_config": to_dict(loss), "parent": None}
    return str(save_checkpoint(path, module.state_dict(), side).path)


def _import_everything() -> None:
    import plusultra_core.data.sqlite_dataset  # noqa: F401
    import plusultra_core.features  # noqa: F401
    import plusultra_core.inference.agent  # noqa: F401
    import plusultra_core.inference.predict  # noqa: F401
    import plusultra_core.inference.risk  # noqa: F401
    import plusultra_core.training.supervised_module  # noqa: F401


def _end_to_end(ckpt: Path, db: Path, day: str) -> dict:
    """Timed in a child: the whole daily inference, with a stage split."""
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    import torch

    from plusultra_core.inference.agent import MarketNNPlusUltraAgent

    _import_everything()  # a spawned child starts cold: imports are process start-up, not inference
    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    agent = MarketNNPlusUltraAgent.from_checkpoint(ckpt)
    t1 = time.perf_counter()
    result = agent.predict(db, day)
    t2 = time.perf_counter()
    # stage split, re-run piecewise after the timed call (reads are warm the second time)
    from plusultra_core.inference.agent import data_version

    with SQLiteMarketDataset(db) as ds:
        s0 = time.perf_counter()
        panel, frame = agent._read(ds, day, day)
        s1 = time.perf_counter()
        data_version(panel)
        s2 = time.perf_counter()
    return {"end_to_end_s": t2 - t0, "rows": len(result.frame), "restore_s": round(t1 - t0, 3), "predict_s": round(t2 - t1, 3),
            "read+features+frame_s (warm)": round(s1 - s0, 3), "data_version_s (warm)": round(s2 - s1, 3)}


def _forward_time(ckpt: Path, db: Path, day: str, repeats: int = 3) -> dict:
    """Timed in a child: the model forward alone on the day's [S, T, F] windows, best of ``repeats``
    after a warm-up. The windows are the last ``T`` rows of each symbol, as the agent takes them."""
    import numpy as np
    import torch

    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
    from plusultra_core.inference.agent import MarketNNPlusUltraAgent

    torch.set_num_threads(THREADS)
    agent = MarketNNPlusUltraAgent.from_checkpoint(ckpt)
    with SQLiteMarketDataset(db) as ds:
        frame = agent.window_frame(ds, day, day)
    last = frame.groupby("symbol", sort=True).tail(CONTEXT)
    x = torch.from_numpy(last[FEATURES].to_numpy(np.float32).reshape(-1, CONTEXT, len(FEATURES)).copy())
    times = []
    with torch.inference_mode():
        agent.module(x[:8])                                   # warm-up: first-call allocations
        for _ in range(repeats):
            t0 = time.perf_counter()
            agent.module(x)
            times.append(time.perf_counter() - t0)
    return {"windows": int(x.shape[0]), "forward_s": min(times)}


def run(n_symbols: int = 500, n_days: int = 700) -> list[BenchResult]:
    """Daily inference for ``n_symbols`` (one day, all symbols): seconds and multiple of the forward."""
    import pandas as pd

    from plusultra_core.data.synth_db import build_synthetic_database

    with tempfile.TemporaryDirectory(prefix="bench_inference_") as tmp:
        db = Path(tmp) / "synth.sqlite"
        build_synthetic_database(db, n_symbols=n_symbols, n_days=n_days, seed=11)
        # imports are paid once here (a daily job imports once too); torch runs only in spawned
        # children: OpenMP threads started in a parent can deadlock a forked child
        import plusultra_core.data.sqlite_dataset  # noqa: F401
        import plusultra_core.features  # noqa: F401
        import plusultra_core.inference.agent  # noqa: F401
        import plusultra_core.inference.predict  # noqa: F401
        import plusultra_core.training.supervised_module  # noqa: F401
        measure(build_checkpoint, Path(tmp) / "supervised.pt", db, start_method="spawn")
        ckpt = Path(tmp) / "supervised.pt"
        day = str(pd.bdate_range("2000-01-03", periods=n_days)[-1].date())
        e2e = measure(_end_to_end, ckpt, db, day, start_method="spawn").value
        fwd_info = measure(_forward_time, ckpt, db, day, start_method="spawn").value
        assert fwd_info["windows"] == n_symbols == e2e["rows"], (fwd_info, e2e)
        seconds, fwd = e2e.pop("end_to_end_s"), fwd_info["forward_s"]
        return [
            BenchResult("inference", f"daily inference, {n_symbols} symbols, end to end", seconds,
                        fwd, "model forward on the same windows", "s", goal="<= 3x the forward",
                        extra={**e2e, "forward_s": round(fwd, 3), "multiple_of_forward": round(seconds / fwd, 2)}),
        ]


def main() -> None:
    parser = scale_parser(__doc__, days=700)
    args = parser.parse_args()
    results = run(args.symbols, args.days)
    print_results(results)


if __name__ == "__main__":
    main()
