"""PPO vs its supervised warm start on synthetic markets: held-out net Sharpe, turnover, costs.

    OMP_NUM_THREADS=1 python -m bench.bench_rl [--seeds 0 1 2] [--warm-epochs 1 3] [--iterations 40]

For each market (a planted, tradable AR(1) signal; a random walk), warm-start length and seed:
the market is drawn with that seed (`plusultra_core.rl.synthetic`), the tests' tiny supervised
policy is trained on its first 1,000 days for that many epochs (the warm start), PPO fine-tunes
it on the same days (`train_ppo`, configs/rl.yaml but 40 iterations; selection on the last 20% of
those days), and both are scored on the held-out last 400 days through the simulator with real
frictions (fee 1 bp, half-spread 2 bp, square-root impact 10 bp, volume cap 10% of the bar,
borrow 50 bp/yr). "PPO" is the weights `keep_best` returns (the warm start when no PPO iterate
beat it on the selection slice); "PPO last" is the last iterate. Prints one markdown row per
run and the seed means.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
import torch

from plusultra_core.config import load_config
from plusultra_core.inference.predict import load_supervised
from plusultra_core.rl import ActorCritic, build_env, evaluate_policy, load_rl_config, train_ppo
from plusultra_core.rl.synthetic import FEATURES, synthetic_frame
from plusultra_core.simulation import SimulatorConfig
from plusultra_core.training.config import TrainConfig
from plusultra_core.training.runner import run_training

FRICTIONS = SimulatorConfig(fee_bps=1.0, half_spread_bps=2.0, impact_bps=10.0, max_participation=0.1,
                            borrow_bps=50.0)
TRAIN_DAYS, CONTEXT = 1000, 16
MARKETS = {"planted": 0.15, "random walk": 0.0}


def _warm_start(frame, seed: int, epochs: int, out_dir: str):
    cfg = load_config(TrainConfig, {
        "data": {"context_length": CONTEXT, "horizon": 2, "train_end": 0.6, "val_end": 0.8, "block_length": 16,
                 "blocks_per_batch": 4, "zscore": False, "feature_names": FEATURES},
        "model": {"architecture": "temporal_hybrid", "params": {"d_model": 16, "n_heads": 2, "n_layers": 1,
                                                                "dropout": 0.0, "ff_mult": 2, "decoder_layers": 1}},
        "head": {"kind": "policy"}, "loss": {"cost_bps": 1.0}, "optim": {"lr": 3e-3, "warmup_steps": 10},
        "trainer": {"max_epochs": epochs, "progress_bar": False, "tensorboard": False, "early_stopping_patience": None,
                    "num_threads": 1, "seed": seed},
        "output_dir": out_dir})
    return run_training(cfg, frame, feature_names=FEATURES).path


def _held_out(module, env, test) -> dict:
    """The served (deterministic) policy on the held-out bars."""
    return evaluate_policy(ActorCritic(module, 8), env, test)


def run(seeds, warm_epochs, iterations: int) -> list[dict]:
    rows = []
    for market, edge in MARKETS.items():
        for epochs in warm_epochs:
            for seed in seeds:
                rows.append(_one(market, edge, epochs, seed, iterations))
    return rows


def _one(market: str, edge: float, epochs: int, seed: int, iterations: int) -> dict:
    frame = synthetic_frame(edge=edge, seed=seed)
    split = np.sort(frame["timestamp"].unique())[TRAIN_DAYS]
    train = frame[frame["timestamp"] < split].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = _warm_start(train, seed, epochs, tmp)
        warm, _ = load_supervised(checkpoint)
        kept, _ = load_supervised(checkpoint)
        last, _ = load_supervised(checkpoint)
    env = build_env(train, FEATURES, context_length=CONTEXT, zscore=False, simulator=FRICTIONS)
    started = time.perf_counter()
    result = train_ppo(kept, env, load_rl_config({"iterations": iterations, "seed": seed, "simulator": FRICTIONS}))
    seconds = time.perf_counter() - started
    train_ppo(last, env, load_rl_config({"iterations": iterations, "seed": seed, "simulator": FRICTIONS,
                                         "keep_best": False}))
    full = build_env(frame, FEATURES, context_length=CONTEXT, zscore=False, simulator=FRICTIONS)
    test = np.arange(int(np.searchsorted(full.timestamps, split)), len(full.timestamps))
    before, after, final = (_held_out(m, full, test) for m in (warm, kept, last))
    years = len(test) / FRICTIONS.periods_per_year
    return {"market": market, "warm": f"{epochs} ep", "seed": seed, "warm_sharpe": before["net_sharpe"],
            "ppo_sharpe": after["net_sharpe"], "ppo_t": after["net_sharpe"] * math.sqrt(years),
            "last_sharpe": final["net_sharpe"], "warm_turnover": before["turnover"],
            "ppo_turnover": after["turnover"], "warm_cost": before["cost"], "ppo_cost": after["cost"],
            "kept": result.best_iteration, "seconds": seconds}


def table(rows: list[dict]) -> str:
    head = ("| market | warm start | seed | net Sharpe warm | net Sharpe PPO | t (PPO) | net Sharpe PPO last "
            "| turnover warm | turnover PPO | cost warm | cost PPO | kept iter | PPO s |")
    lines = [head, "|" + "|".join(["---"] * 13) + "|"]
    fmt = ("| {market} | {warm} | {seed} | {warm_sharpe:.2f} | {ppo_sharpe:.2f} | {ppo_t:.2f} | {last_sharpe:.2f} "
           "| {warm_turnover:.4f} | {ppo_turnover:.4f} | {warm_cost:.4f} | {ppo_cost:.4f} | {kept} | {seconds:.1f} |")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["market"], r["warm"]), []).append(r)
    for (market, warm), group in groups.items():
        lines += [fmt.format(**r) for r in group]
        mean = {k: float(np.mean([r[k] for r in group])) for k in group[0] if k not in ("market", "warm", "seed")}
        mean["kept"] = "/".join(str(r["kept"]) for r in group)
        lines.append(fmt.format(market=f"**{market}**", warm=warm, seed="mean", **mean))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--warm-epochs", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(table(run(args.seeds, args.warm_epochs, args.iterations)))


if __name__ == "__main__":
    main()
