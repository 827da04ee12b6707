"""Names used across the Dagster code: asset groups, partition dimensions, resource keys."""

INGEST_GROUP = "ingest"
FEATURES_GROUP = "features"
TRAINING_GROUP = "training"
EVALUATION_GROUP = "evaluation"
INFERENCE_GROUP = "inference"
RECONCILIATION_GROUP = "reconciliation"

SYMBOL_DIM = "symbol"     # a symbol, or a shard of symbols for large universes
PERIOD_DIM = "period"     # a year / quarter / month of history
SYMBOLS_PARTITIONS = "symbols"  # name of the dynamic partitions set filled from `assets`

# workspace.yaml and [tool.dagster] name the code location so; runs the CLI starts carry its
# repository label, so the UI lists them with the location's runs and on the Overview timeline
CODE_LOCATION = "plusultra"
REPOSITORY_LABEL = f"__repository__@{CODE_LOCATION}"

# Tag on every job's runs naming its stage; deploy/dagster.yaml's run queue limits concurrent runs
# per stage by it (training runs are heavy, history runs rewrite shared store partitions).
RUN_STAGE_TAG = "plusultra/stage"

MARKET_DB = "market_db"
STORE = "store"

# asset names double as store folders
VALIDATED_BARS = "validated_bars"
FEATURE_PANEL = "feature_panel"
WINDOW_TENSORS = "window_tensors"
TRAINING_SET = "training_set"
PRETRAINED_CHECKPOINT = "pretrained_checkpoint"
SUPERVISED_CHECKPOINT = "supervised_checkpoint"
RL_CHECKPOINT = "rl_checkpoint"   # only when training.rl_config is set
EVALUATION_REPORT = "evaluation_report"
LEADERBOARD = "leaderboard"
INFERENCE_FRAMES = "inference_frames"
TRADE_RECONCILIATION = "trade_reconciliation"
EXECUTED_TRADES = "executed_trades"  # observed source: the fills of each decision day

# Bump when the history assets' logic changes: stored partitions built by older logic are then
# stale in Dagster (its code version, see code_versions.history_code_version, changes).
HISTORY_CODE_VERSION = "3"
