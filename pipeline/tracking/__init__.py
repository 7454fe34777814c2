"""MLflow, in one place: where runs and models are kept (store), runs that always end (runs),
the registry and its champions (registry), what a training or tuning run logs and the
promotion policy (training). Nothing outside this package imports MLflow.

The default store is a SQLite file in the project directory (nothing to start); a team server
is only a different `tracking.uri` (or MLFLOW_TRACKING_URI), always set explicitly. No credential
reaches a log, an error or an artifact; an unreachable server or a corrupt or locked store is one
clear error; both champions come from one run; every run ends FINISHED, FAILED or KILLED."""

from pipeline.tracking.registry import (
    CHAMPION,
    PAIR_TAG,
    Champion,
    PyfuncModel,
    champion_or_none,
    load_champion,
    load_champions,
    log_model,
    pending_pair,
    repair_champions,
    set_champions,
    training_run_of,
)
from pipeline.tracking.runs import owner, owner_gone, reap_abandoned_runs, tracked_run
from pipeline.tracking.store import current_config, git_commit, guarded, sqlite_path, start_tracking, store_failure
from pipeline.tracking.training import (
    TrainedModels,
    champion_backtest,
    decide_promotion,
    judge,
    log_training_run,
    log_tuning_result,
    promotion_verdict,
    store_exists,
    training_cutoffs_of,
)

__all__ = [
    "CHAMPION", "PAIR_TAG", "Champion", "PyfuncModel", "TrainedModels", "champion_backtest", "champion_or_none",
    "current_config", "training_run_of",
    "decide_promotion", "git_commit", "guarded", "judge", "load_champion", "load_champions", "log_model",
    "log_training_run", "log_tuning_result", "owner", "owner_gone", "pending_pair", "promotion_verdict",
    "reap_abandoned_runs", "repair_champions", "set_champions", "sqlite_path", "start_tracking", "store_exists",
    "store_failure", "tracked_run", "training_cutoffs_of",
]
