"""keras-tuner tuners for recaptcha_tf: grid, random, Hyperband and Bayesian optimisation.

Each is the stock keras-tuner class with a small mixin that passes the trial id
to :meth:`CaptchaHyperModel.fit` (for the per-trial TensorBoard folder) and
throttles a distributed worker that is told to wait (keras-tuner re-asks the
chief in a tight loop). The grid uses :class:`ResumableGridSearchOracle`: the
stock ``GridSearchOracle`` does not save its position in the grid, so a reloaded
grid search stops at once instead of running the remaining combinations.
"""

from __future__ import annotations

import functools
import os
import time

import keras_tuner as kt
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.tuners.gridsearch import LinkedList

from recaptcha_tf.tuning.spaces import TuningError

TUNERS = ("grid", "random", "hyperband", "bayesian")


class ResumableGridSearchOracle(kt.oracles.GridSearchOracle):
    """``GridSearchOracle`` that rebuilds its place in the grid when a search is reloaded.

    After a reload every tried combination is put back in grid order and queued
    for "what comes next", so the search continues with the untried combinations
    and never repeats a finished one (a trial interrupted mid-way is retried).
    """

    def set_state(self, state):
        super().set_state(state)
        tried = [t for t in self.start_order if t in self.trials and self.trials[t].hyperparameters.values]

        def compare(a, b):
            return self._compare(self.trials[a].hyperparameters.values, self.trials[b].hyperparameters.values)

        self._ordered_ids = LinkedList()
        for trial_id in sorted(tried, key=functools.cmp_to_key(compare)):
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(tried)


class _TrialAware:
    """Mixin: trial id into ``HyperModel.fit``; a pause between polls of an idle distributed worker."""

    _idle = False

    def run_trial(self, trial, *args, **kwargs):
        kwargs["trial_id"] = trial.trial_id
        return super().run_trial(trial, *args, **kwargs)

    def pre_create_trial(self):
        if self._idle and dist_utils.has_chief_oracle():
            time.sleep(0.25)
        self._idle = True
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._idle = False
        super().on_trial_begin(trial)


class GridTuner(_TrialAware, kt.Tuner):
    """Exhaustive grid: every combination of the value lists, each once (``max_trials`` caps it)."""

    def __init__(self, hypermodel, objective, max_trials=None, seed=None, **kwargs):
        oracle = ResumableGridSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
        super().__init__(oracle, hypermodel, **kwargs)


class RandomTuner(_TrialAware, kt.RandomSearch):
    pass


class BayesianTuner(_TrialAware, kt.BayesianOptimization):
    pass


class HyperbandTuner(_TrialAware, kt.Hyperband):
    pass


def make_tuner(
    kind: str,
    hypermodel,
    objective: str,
    direction: str,
    directory: str,
    project_name: str = "search",
    max_trials: int | None = None,
    epochs: int = 8,
    seed: int = 0,
    overwrite: bool = False,
    distribution_strategy=None,
):
    """A keras-tuner tuner of ``kind`` (``grid``, ``random``, ``hyperband``, ``bayesian``).

    Its state lives in ``directory/project_name``; constructing it again with
    ``overwrite=False`` reloads the state, so ``search`` continues where it stopped.
    ``max_trials`` defaults to the whole grid for ``grid`` and to 10 for
    ``random``/``bayesian``; Hyperband has no trial count (it budgets ``epochs``).
    """
    obj = kt.Objective(objective, direction)
    common = dict(
        directory=directory, project_name=project_name, overwrite=overwrite, distribution_strategy=distribution_strategy
    )
    if kind == "grid":
        return GridTuner(hypermodel, objective=obj, max_trials=max_trials, seed=seed, **common)
    if kind == "random":
        return RandomTuner(hypermodel, objective=obj, max_trials=max_trials or 10, seed=seed, **common)
    if kind == "bayesian":
        return BayesianTuner(hypermodel, objective=obj, max_trials=max_trials or 10, seed=seed, **common)
    if kind == "hyperband":
        if max_trials:
            raise TuningError(
                "--max-trials does not apply to Hyperband: it budgets epochs (max_epochs=--epochs, "
                "factor 3). Leave --max-trials out or use another tuner."
            )
        return HyperbandTuner(hypermodel, objective=obj, max_epochs=epochs, factor=3, seed=seed, **common)
    raise TuningError(f"Unknown tuner {kind!r}; choose from {list(TUNERS)}.")


def distributed_role() -> str:
    """``"chief"``, ``"worker"`` or ``"single"`` from KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / _PORT."""
    try:
        if not dist_utils.has_chief_oracle():
            return "single"
    except RuntimeError as err:  # IP set without PORT or TUNER_ID
        raise TuningError(str(err)) from None
    return "chief" if dist_utils.is_chief_oracle() else "worker"


def tuner_id() -> str:
    return os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
