"""`churn tune`: an Optuna study per model on the walk-forward backtest, persistent in SQLite so that an interrupted
study resumes; best parameters go to MLflow and to `model.tuned_params_path`, where
`churn train` picks them up (explicit `model.*_params` in the config still win).

A resumed study goes on where it stopped: trials its killed process left RUNNING are failed,
and its sampler is seeded from the seed and the trials already run, so it does not replay the
first suggestions. Ctrl-C stops after the current trial (a second one stops at once), writes
the best parameters found so far and ends the MLflow run; SIGTERM stops at once, the same way."""

from __future__ import annotations

import logging
import signal

import numpy as np
import optuna
import yaml

from features.catalog import feature_catalog
from features.model_input import CutoffPlan, all_cutoffs, build_training_frame, fold_rows
from models.errors import ModelDataError
from models.evaluation import Horizons, enrich_folds
from models.lifetime import LIFETIME_FEATURES
from models.tuning import TuningData, churn_objective, clv_objective, tuned_params
from pipeline import tracking
from pipeline.config import Config, load_tuned_params
from pipeline.errors import (
    Interrupted,
    Signalled,
    TrackingError,
    check_signals,
    deferred_signals,
    on_signals,
    raise_signalled,
    signal_handled,
)
from pipeline.files import atomic_write_text
from pipeline.logs import adopt_loggers, stage
from pipeline.tables import Tables

log = logging.getLogger(__name__)
# model: (direction, objective, label, what the objective measures)
STUDIES = {"churn": ("maximize", churn_objective, "is_churned", "auc"),
           "clv": ("minimize", clv_objective, "future_revenue", "tweedie")}
State = optuna.trial.TrialState
optuna.logging.disable_default_handler()  # Optuna's lines go through the project's (masked) handler
adopt_loggers("optuna")


def _no_traceback_for_interrupts(record: logging.LogRecord) -> bool:
    """A trial stopped by a signal is reported in one line, not with a traceback."""
    if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
        record.exc_info = record.exc_text = None
    return True


logging.getLogger("optuna.study._optimize").addFilter(_no_traceback_for_interrupts)


class StopAfterTrial:
    """Ctrl-C while tuning: let the current trial finish, then stop; a second Ctrl-C stops now."""

    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame) -> None:
        if self.requested:
            raise_signalled(signum)
        self.requested = True
        log.warning("Ctrl-C: stopping after the current trial (press Ctrl-C again to stop at once)")

    def after_trial(self, study: optuna.Study, trial) -> None:
        check_signals()  # SIGTERM or a second Ctrl-C that landed where Python could only print it
        if self.requested:
            study.stop()


def run_tuning(tables: Tables, cfg: Config, trials: int, timeout_s: float | None, storage: str) -> dict:
    """Tune both models on their backtests; write and return the best parameters (when
    stopped by a signal, those found so far, then raise Interrupted)."""
    from pipeline.train import training_plans  # the plans training judges on

    plans = training_plans(tables, cfg)
    try:
        with stage("build tuning frame") as info, on_signals(raise_signalled):
            frame = build_training_frame(tables, cfg, all_cutoffs(plans.values()))
            info["rows"] = len(frame)
    except Signalled as exc:
        signal_handled()
        raise Interrupted(f"{exc} Nothing was tuned.", exc.signum) from None
    features = [f.name for f in feature_catalog(cfg.features) if f.name in frame]
    best: dict[str, dict] = {}
    stop, interrupted = StopAfterTrial(), None
    rdb = open_storage(storage, cfg.tracking.busy_timeout_seconds)
    with tracking.tracked_run(cfg.tracking, f"tune-{plans['churn'].latest_origin}", signals=(signal.SIGTERM,)), \
            on_signals(stop.handle, (signal.SIGINT,)):
        try:
            for name, (direction, objective, _, _) in STUDIES.items():
                if not stop.requested:
                    run_study(f"{name}-{plans[name].latest_origin}", direction, objective,
                              tuning_data(frame, plans[name], name, features, cfg), trials, timeout_s, rdb,
                              cfg.model.seed, stop)
        except Signalled as exc:  # SIGTERM, or a second Ctrl-C: the trial running was failed
            interrupted = exc
            signal_handled()
        for name, (_, _, _, measure) in STUDIES.items():  # this session's and earlier sessions' trials
            if (study := finished_study(f"{name}-{plans[name].latest_origin}", rdb)) is not None:
                best[name] = tuned_params(study)
                tracking.log_tuning_result(name, best[name], measure, study.best_value)
        with deferred_signals():
            write_best(best, cfg)
        if interrupted or stop.requested:
            signum = interrupted.signum if interrupted else signal.SIGINT
            raise Interrupted(f"Tuning stopped by {signal.Signals(signum).name}; the best parameters so far "
                              f"({', '.join(best) or 'none yet'}) are in {cfg.model.tuned_params_path}, and "
                              "`churn tune` resumes the studies.", signum)
    return best


def finished_study(name: str, storage: optuna.storages.BaseStorage) -> optuna.Study | None:
    """The named study, if it exists and has a complete trial."""
    if name not in {s.study_name for s in storage.get_all_studies()}:
        return None
    study = optuna.load_study(study_name=name, storage=storage)
    return study if any(t.state == State.COMPLETE for t in study.get_trials(deepcopy=False)) else None


def write_best(best: dict[str, dict], cfg: Config) -> None:
    """Write the best parameters; a model without any yet keeps what the file held for it."""
    earlier = {k: v for k, v in load_tuned_params(cfg.model.tuned_params_path).items() if v}
    atomic_write_text(yaml.safe_dump(earlier | best, sort_keys=True), cfg.model.tuned_params_path)
    log.info("best parameters (%s) written to %s; `churn train` uses them from now on", ", ".join(best) or "none",
             cfg.model.tuned_params_path)


def tuning_data(frame, plan: CutoffPlan, kind: str, features: list[str], cfg: Config) -> TuningData:
    """The backtest's folds, with the lifetime model's outputs added exactly as training adds them."""
    folds = enrich_folds(fold_rows(frame, plan), Horizons(cfg.churn.horizon_days, cfg.clv.horizon_days))
    if len(folds) < 2:
        raise ModelDataError(f"The {kind} backtest needs at least two origins with active customers; the data "
                             f"allows {len(folds)}.")
    return TuningData(kind, folds, [*features, *LIFETIME_FEATURES])


def open_storage(url: str, busy_timeout_s: float) -> optuna.storages.BaseStorage:
    """The study storage, checked first when it is a SQLite file (corrupt, or locked too long)."""
    path = tracking.sqlite_path(url)
    if path is not None and (failure := TrackingError.of_sqlite_file(
            path, busy_timeout_s, "Optuna study storage", "rerun `churn tune`, which starts the studies afresh")):
        raise failure
    engine = {"connect_args": {"timeout": busy_timeout_s}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine)


def sampler_seed(seed: int, trials_before: int) -> int:
    """The seed of a session's sampler: `seed` for a new study; for a resumed one, a seed of its
    own (else its random start-up trials would repeat the first session's suggestions)."""
    return seed if trials_before == 0 else int(np.random.SeedSequence([seed, trials_before]).generate_state(1)[0])


def fail_abandoned_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """Fail the trials left RUNNING by a process that was killed (or by a version that did not
    record its process); return how many."""
    study_id = storage.get_study_id_from_name(study.study_name)
    abandoned = [t for t in study.get_trials(deepcopy=False, states=(State.RUNNING,))
                 if "churn.pid" not in t.user_attrs
                 or tracking.owner_gone(t.user_attrs.get("churn.host"), t.user_attrs.get("churn.pid"))]
    for trial in abandoned:
        storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number),
                                       State.FAIL)
    if abandoned:
        log.warning("study %s: %d trial(s) left RUNNING by a killed process marked FAIL", study.study_name,
                    len(abandoned))
    return len(abandoned)


def run_study(study_name: str, direction: str, objective, data: TuningData, trials: int, timeout_s: float | None,
              storage, seed: int, stop: StopAfterTrial | None = None) -> optuna.Study:
    """Add `trials` trials to the named study (created or resumed from `storage`, a URL or an
    opened storage)."""
    storage = open_storage(storage, 30.0) if isinstance(storage, str) else storage
    study = optuna.create_study(
        study_name=study_name, storage=storage, load_if_exists=True, direction=direction,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    fail_abandoned_trials(study, storage)
    done_before = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, done_before))
    owner = tracking.owner()

    def owned(trial: optuna.Trial) -> float:
        for key, value in owner.items():  # first, so that a killed process's trial can be told
            trial.set_user_attr(key, value)
        return objective(trial, data, seed)

    if trials == 0:
        return study
    with stage(f"tune {study_name.split('-')[0]} ({trials} trials, resuming after {done_before})") as info:
        study.optimize(owned, n_trials=trials, timeout=timeout_s, gc_after_trial=True,
                       callbacks=[stop.after_trial] if stop else None)
        states = [t.state for t in study.trials[done_before:]]
        info["complete"], info["pruned"] = states.count(State.COMPLETE), states.count(State.PRUNED)
        if any(t.state == State.COMPLETE for t in study.trials):
            info["best"] = round(study.best_value, 4)
    return study
