"""Masked vs contrastive vs both vs no pretraining, out of sample, with the study's protocol.

Runs ``plusultra study`` once per arm (configs/study_objectives*.yaml: the same folds, seeds,
epochs and costs; only the pretraining differs), each in its own ``PLUSULTRA_HOME`` and
``DAGSTER_HOME`` under ``--root`` so no arm sees another's store, at most ``--parallel`` arms at
a time (each trains on one torch thread). Then prints one table from the arms' leaderboards:
the seed models' Sharpe (mean ± std over seeds) and the seed ensemble's, both net of costs, and
the ensemble's Sharpe difference against buy-and-hold with its bootstrap p-value and verdict,
exactly as the leaderboard reports them.

    PYTHONPATH=. python bench/compare_pretraining.py --db .plusultra/demo.sqlite
    PYTHONPATH=. python bench/compare_pretraining.py --table-only   # re-read finished arms
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"masked": "configs/study_objectives.yaml",
        "contrastive": "configs/study_objectives_contrastive.yaml",
        "both": "configs/study_objectives_both.yaml",
        "none": "configs/study_objectives_none.yaml"}


def _home(root: Path, arm: str) -> Path:
    return root / arm


def run_arm(arm: str, root: Path, db: Path) -> float:
    """``plusultra study`` of one arm in its own home; returns its wall-clock seconds."""
    home = _home(root, arm)
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PLUSULTRA_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    with open(home / "study.log", "w") as log:
        code = subprocess.run([sys.executable, "-m", "plusultra_pipeline.cli", "study", "--db", str(db),
                               "--config", ARMS[arm]], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t0
    (home / "seconds.txt").write_text(f"{seconds:.0f}\n")
    if code:
        raise RuntimeError(f"{arm}: plusultra study exited {code}; see {home / 'study.log'}")
    return seconds


def arm_row(arm: str, root: Path, db: Path) -> dict | None:
    """The leaderboard numbers of one finished arm (None when it has no evaluated fold)."""
    from plusultra_core.evaluation.research import BUY_AND_HOLD
    from plusultra_pipeline.folds import leaderboard_view
    from plusultra_pipeline.settings import load_settings

    home = _home(root, arm)
    settings = load_settings(ROOT / ARMS[arm], environ={"PLUSULTRA_HOME": str(home), "PLUSULTRA_DB": str(db)})
    view = leaderboard_view(settings, settings.store_path, settings.database_path)
    if view is None:
        return None
    folds, summary = view.fold_dirs, view.summary
    table, seeds, facts = summary.table, summary.seeds, summary.facts
    seconds = home / "seconds.txt"
    return {"arm": arm, "folds": len(folds), "days": summary.n_days,
            "seed_sharpe": seeds.at["sharpe", "mean"], "seed_sharpe_std": seeds.at["sharpe", "std"],
            "n_seeds": int(seeds.at["sharpe", "n"]),
            "ensemble_sharpe": table.at[summary.primary, "sharpe"],
            "diff_vs_bh": table.at[summary.primary, "sharpe_diff_vs_bh"],
            "p_vs_bh": table.at[summary.primary, "p_vs_bh"],
            "ensemble_ic": table.at[summary.primary, "ic"],
            "bh_sharpe": table.at[BUY_AND_HOLD, "sharpe"] if BUY_AND_HOLD in table.index else math.nan,
            "verdict": "beat" if facts.get("beat") else "did not beat",
            "minutes": float(seconds.read_text()) / 60 if seconds.is_file() else math.nan}


def markdown(rows: list[dict]) -> str:
    head = ("| pretraining | folds | days | seed Sharpe (mean ± std) | ensemble Sharpe | ensemble IC "
            "| vs buy-and-hold (Sharpe diff, p) | verdict | minutes |")
    lines = [head, "|" + "|".join(["---"] * 9) + "|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['folds']} | {r['days']} | {r['seed_sharpe']:.2f} ± {r['seed_sharpe_std']:.2f} "
                     f"(n={r['n_seeds']}) | {r['ensemble_sharpe']:.2f} | {r['ensemble_ic']:.3f} "
                     f"| {r['diff_vs_bh']:+.2f}, p = {r['p_vs_bh']:.2f} | {r['verdict']} | {r['minutes']:.0f} |")
    bh = {round(r["bh_sharpe"], 4) for r in rows}
    lines.append("")
    lines.append(f"buy-and-hold Sharpe over the same days: {', '.join(f'{b:.2f}' for b in sorted(bh))}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default=str(ROOT / ".plusultra" / "demo.sqlite"), help="the demo database (read-only)")
    p.add_argument("--root", default=str(ROOT / ".plusultra" / "objectives"), help="one home per arm under here")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--parallel", type=int, default=2, help="arms run at once (2 cores: 2)")
    p.add_argument("--table-only", action="store_true", help="print the table of finished arms, run nothing")
    args = p.parse_args(argv)
    root, db = Path(args.root).resolve(), Path(args.db).resolve()
    if not db.is_file():
        raise SystemExit(f"{db}: no demo database (plusultra demo-db {db})")
    if not args.table_only:
        # the slowest arms first, so the last two finish close together
        order = sorted(args.arms, key=["both", "contrastive", "masked", "none"].index)
        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            futures = {pool.submit(run_arm, arm, root, db): arm for arm in order}
            for future in as_completed(futures):  # one failed arm does not lose the others' table
                try:
                    print(f"{futures[future]}: done in {future.result() / 60:.1f} min", flush=True)
                except RuntimeError as exc:
                    print(exc, flush=True)
    rows = [r for r in (arm_row(a, root, db) for a in args.arms) if r is not None]
    print(markdown(rows) if rows else "no arm has an evaluated fold yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
