"""PPO fine-tuning of the supervised policy head on the vectorised execution simulator.

`load_rl_config(path)` -> `RLConfig`; `build_env(frame, ...)` -> `MarketEnv` (every symbol x bar
decision with its window, next-bar return and volume); `train_ppo(module, env, cfg)` -> `PPOResult`;
`run_rl(supervised_checkpoint, frame, cfg, output)` writes an RL checkpoint in the supervised
format (sidecar ``kind: "rl"``). No Dagster here.
"""

from plusultra_core.rl.config import RISK_TERMS, RLConfig, load_rl_config
from plusultra_core.rl.env import MarketEnv, build_env, embed_all
from plusultra_core.rl.ppo import (ACTION_POSITIONS, ActorCritic, PPOResult, ValueHead, evaluate_policy, gae,
                                   risk_adjusted_reward, train_ppo)
from plusultra_core.rl.runner import RL_KIND, RL_NAME, run_rl

__all__ = ["RLConfig", "RISK_TERMS", "load_rl_config", "MarketEnv", "build_env", "embed_all", "ACTION_POSITIONS",
           "ActorCritic", "ValueHead", "PPOResult", "gae", "risk_adjusted_reward", "train_ppo", "evaluate_policy",
           "RL_KIND", "RL_NAME", "run_rl"]
