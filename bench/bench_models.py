"""Model benchmark: training throughput of every backbone beside pytorch-forecasting's TFT.

For each architecture in the registry, at the reference size (width 128, 4 layers, context 128,
32 features, batch 256, horizon 5), one training step = forward + backward + AdamW step of the
backbone plus a simple head (linear on the horizon embeddings, MSE on random targets, plus the
backbone's ``aux_loss``). Reported, all in the same run:

- samples/s in fp32 and under bf16 autocast (CPU);
- FLOPs per sample of one training step (``torch.utils.flop_counter.FlopCounterMode``) and the
  achieved fraction of the CPU fp32 matmul peak (GFLOP/s of a 2048 x 2048 matmul);
- the peer: ``pytorch_forecasting.TemporalFusionTransformer`` at the same hidden width, built
  from a ``TimeSeriesDataSet`` with the same 32 real inputs, context and horizon, its training
  steps timed the same way outside Lightning's Trainer (its own QuantileLoss). Goal: our
  ``temporal_fusion`` at >= 2x its samples/s;
- ``moe_transformer`` throughput at ``num_experts`` 4, 8, 16 with ``top_k`` 2 (sparse routing:
  should stay about flat).

Each measurement runs in a forked child (``bench.common.measure``) so memory and thread state do
not leak between models. ``quick=True`` (``--quick``) uses small sizes and two timed steps.
The machine may be shared: treat absolute numbers as indicative, ratios as the result.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from bench.common import BenchResult, format_results, measure

REFERENCE = {"width": 128, "layers": 4, "context": 128, "features": 32, "batch": 256, "horizon": 5,
             "steps": 5, "warmup": 1}
QUICK = {"width": 64, "layers": 2, "context": 64, "features": 32, "batch": 64, "horizon": 5,
         "steps": 2, "warmup": 1}
BF16_STEPS = 2
# config fields that mean "depth" differ per architecture
DEPTH_FIELDS = ("n_layers", "encoder_layers")
PEER = "pytorch-forecasting TFT"


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an ``n x n`` matmul (the CPU's practical peak for dense layers)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b                                                   # warm-up (thread pool, caches)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _model_config(name: str, size: dict, overrides: dict | None = None):
    from plusultra_core.models import registry

    cfg_cls, _ = registry.resolve(name)
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    params = {"d_model": size["width"], "dropout": 0.0,
              **{k: size["layers"] for k in DEPTH_FIELDS if k in fields}, **(overrides or {})}
    return registry.load_model_config(name, overrides=params)


def _train_ours(name: str, size: dict, bf16: bool, overrides: dict | None = None) -> dict:
    """Samples/s and FLOPs/sample of one backbone's training step (runs in a child)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from plusultra_core.models import registry

    torch.manual_seed(0)
    cfg = _model_config(name, size, overrides)
    backbone = registry.build_backbone(name, cfg, n_features=size["features"], horizon=size["horizon"])
    head = torch.nn.Linear(cfg.d_model, 1)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    x = torch.randn(size["batch"], size["context"], size["features"])
    y = torch.randn(size["batch"], size["horizon"]) * 0.01

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = backbone(x)
            pred = head(out.horizon).squeeze(-1)                      # [B, H, D] -> [B, H]
        loss = torch.nn.functional.mse_loss(pred.float(), y) + out.aux_loss.float()
        loss.backward()
        opt.step()

    for _ in range(size["warmup"]):
        step()
    flops = None
    if not bf16:
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops() / size["batch"]
    t0 = time.perf_counter()
    for _ in range(size["steps"]):
        step()
    seconds = time.perf_counter() - t0
    return {"samples_per_s": size["steps"] * size["batch"] / seconds, "flops_per_sample": flops,
            "params": sum(p.numel() for p in backbone.parameters())}


def _train_tft(size: dict) -> dict:
    """pytorch-forecasting's TFT at ``hidden_size = width`` on the same inputs (runs in a child)."""
    import logging
    import warnings

    import numpy as np
    import pandas as pd
    import torch
    from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n_series = 4
    length = size["context"] + size["horizon"] + size["batch"] // n_series + 8
    feats = [f"f{i}" for i in range(size["features"])]
    frame = pd.DataFrame(rng.standard_normal((n_series * length, size["features"])).astype("float32"),
                         columns=feats)
    frame["series"] = np.repeat([f"s{i}" for i in range(n_series)], length)
    frame["time_idx"] = np.tile(np.arange(length), n_series)
    frame["target"] = rng.standard_normal(len(frame)).astype("float32") * 0.01
    ds = TimeSeriesDataSet(
        frame, time_idx="time_idx", target="target", group_ids=["series"],
        max_encoder_length=size["context"], min_encoder_length=size["context"],
        max_prediction_length=size["horizon"], min_prediction_length=size["horizon"],
        time_varying_unknown_reals=feats + ["target"], target_normalizer=None,
        add_relative_time_idx=False, add_target_scales=False, add_encoder_length=False)
    model = TemporalFusionTransformer.from_dataset(
        ds, hidden_size=size["width"], attention_head_size=4, dropout=0.0, lstm_layers=1)
    loader = ds.to_dataloader(train=True, batch_size=size["batch"], num_workers=0)
    x, (y, weight) = next(iter(loader))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = model.loss(out["prediction"], (y, weight))
        loss.backward()
        opt.step()

    for _ in range(size["warmup"]):
        step()
    t0 = time.perf_counter()
    for _ in range(size["steps"]):
        step()
    seconds = time.perf_counter() - t0
    batch = x["encoder_cont"].shape[0]
    return {"samples_per_s": size["steps"] * batch / seconds,
            "params": sum(p.numel() for p in model.parameters())}


def run(quick: bool = False, architectures: tuple[str, ...] | None = None,
        experts: tuple[int, ...] = (4, 8, 16), include_peer: bool = True) -> list[BenchResult]:
    """All model rows (see module docstring); ``quick`` shrinks every size and step count."""
    from plusultra_core.models import registry

    size = QUICK if quick else REFERENCE
    archs = architectures or registry.ARCHITECTURES
    peak = measure(matmul_peak_gflops).value
    tft = measure(_train_tft, size).value if include_peer else None
    base = tft["samples_per_s"] if tft else None
    shape = (f"width {size['width']}, {size['layers']} layers, context {size['context']}, "
             f"{size['features']} features, batch {size['batch']}")
    results = []
    for name in archs:
        for bf16 in (False, True):
            # bf16 runs 5-8x slower than fp32 on CPUs without native bf16: time fewer steps
            timed = dict(size, steps=min(size["steps"], BF16_STEPS)) if bf16 else size
            r = measure(_train_ours, name, timed, bf16).value
            extra = {"size": shape, "params": r["params"], "peak_gflops": round(peak, 1)}
            if r["flops_per_sample"]:
                achieved = r["flops_per_sample"] * r["samples_per_s"] / 1e9
                extra.update(gflop_per_sample=round(r["flops_per_sample"] / 1e9, 4),
                             achieved_gflops=round(achieved, 2),
                             fraction_of_peak=round(achieved / peak, 4))
            if tft:
                extra["peer_params"] = tft["params"]
            results.append(BenchResult(
                stage="models", metric=f"{name} train {'bf16' if bf16 else 'fp32'}",
                ours=r["samples_per_s"], baseline=base, baseline_name=PEER if tft else None,
                unit="samples/s", goal=">= 2x TFT" if name == "temporal_fusion" else "", extra=extra))
    if "moe_transformer" in archs:
        for E in experts:
            r = measure(_train_ours, "moe_transformer", size, False,
                        {"num_experts": E, "top_k": 2}).value
            results.append(BenchResult(
                stage="models", metric=f"moe_transformer E={E} top_k=2 train fp32",
                ours=r["samples_per_s"], baseline=base, baseline_name=PEER if tft else None,
                unit="samples/s", goal="~flat in E",
                extra={"params": r["params"], "gflop_per_sample": round(r["flops_per_sample"] / 1e9, 4)}))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, two timed steps")
    parser.add_argument("--arch", action="append", help="only these architectures (repeatable)")
    args = parser.parse_args(argv)
    results = run(quick=args.quick, architectures=tuple(args.arch) if args.arch else None)
    print(format_results(results))
    for r in results:
        print(r.metric, r.extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
