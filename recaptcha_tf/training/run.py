"""One run skeleton for every task: a :class:`RunPlan` and the hooks a task's trainer fills in.

Every training run goes through the same sequence (:meth:`TrainingRun.execute`)::

    plan (defaults, recipe, budget)   ->  distribution (strategy, run folder, batch, learning rates)
    ->  data (split, tf.data pipelines)   ->  model (built in the precision policy and strategy scope)
    ->  schedule (epochs, steps, time budget)   ->  config.json; a finished run returns its summary
    ->  fit in phases (training.phases.fit_run)   ->  test report   ->  summary.json, backup removed

A task's trainer is a subclass that fills in :meth:`~TrainingRun.prepare_data`, :meth:`~TrainingRun.build_model`,
:meth:`~TrainingRun.schedule`, :meth:`~TrainingRun.config`, :meth:`~TrainingRun.evaluate_test` and, where it has
them, :meth:`~TrainingRun.callbacks` and :meth:`~TrainingRun.finish`: see :mod:`.classifier` and :mod:`.text`.
Every file of the run folder is named once, in :class:`recaptcha_tf.utils.run_folder.RunFolder`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

from recaptcha_tf.models.precision import precision_policy
from recaptcha_tf.tasks.registry import TaskSpec
from recaptcha_tf.training.phases import (
    TrainingConfigError,
    fit_run,
    is_chief_process,
    set_up_distribution,
    sync_batchnorm,
)
from recaptcha_tf.training.run_folder import changed_settings, finish_run, finished_summary
from recaptcha_tf.utils.run_folder import RunFolder

log = logging.getLogger("recaptcha_tf")


@dataclasses.dataclass
class RunPlan:
    """The resolved plan of one run: the task's defaults, the model's recipe and the user's options merged.

    Attributes:
        task: the task spec (an object, never its name).
        data: the training data (folder, CSV or Parquet path).
        out: the run folder; under multi-worker training each non-chief worker's own sub-folder.
        model: the registry name of the architecture.
        seed: seed of the split, the shuffles, augmentation and initialisation.
        batch_size: images a step (per replica until :meth:`TrainingRun.execute` scales it).
        learning_rate: peak learning rate of the (last) phase without a frozen phase.
        fine_tune_learning_rate: peak learning rate of phase 2 after a frozen phase (``None``: ``learning_rate``).
        weights: parsed starting weights (``None``: random initialisation).
        freeze_epochs: epochs of phase 1, backbone frozen (0: one phase).
        unfreeze: what phase 2 trains: ``"all"`` or the top N blocks.
        patience: epochs without a better monitored value before early stopping.
        optimizer: optimizer name (:func:`recaptcha_tf.training.callbacks.make_optimizer`).
        precision: ``"auto"``, ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``.
        strategy: ``tf.distribute`` strategy name (:mod:`recaptcha_tf.training.distribute`).
        logdir: TensorBoard root (``None``: no logs); the run logs to ``logdir/<run_name>``.
        run_name: TensorBoard run name (default the run folder's name).
        callbacks: the caller's extra Keras callbacks, called last.
    """

    task: TaskSpec
    data: str
    out: str
    model: str
    seed: int = 0
    batch_size: int = 32
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float | None = None
    weights: object = None
    freeze_epochs: int = 0
    unfreeze: int | str = "all"
    patience: int | None = None
    optimizer: str = "adam"
    precision: str = "auto"
    strategy: str = "default"
    logdir: str | None = "logs"
    run_name: str | None = None
    callbacks: Sequence = ()

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.out)


@dataclasses.dataclass
class Schedule:
    """How long a run trains.

    Attributes:
        epochs: epochs in all (both phases).
        steps_per_epoch: optimizer steps an epoch.
        repeat: the training set repeats forever (a step budget cut into equal epochs), so every epoch is
            ``steps_per_epoch`` batches; ``False``: whole passes over the set.
        replan: phase 1's measured epoch seconds -> phase 2's epochs
            (:func:`recaptcha_tf.training.phases.fit_in_phases`).
        config: what the schedule adds to ``config.json`` (step-time measurements, budgets), so that a resumed run
            computes the very same schedule.
        warmup_epochs: the learning rate's linear warm-up, in epochs (a fraction of one allowed).
        learning_rate_schedule: ``(learning_rate, phase_epochs) -> schedule`` replacing the warm-up and cosine
            (:func:`recaptcha_tf.training.phases.fit_run`).
    """

    epochs: int
    steps_per_epoch: int
    repeat: bool = False
    replan: Callable[[float], int] | None = None
    config: dict = dataclasses.field(default_factory=dict)
    warmup_epochs: float = 1
    learning_rate_schedule: Callable | None = None


@dataclasses.dataclass
class Objective:
    """What a run minimises and watches: the loss, compiled metrics, the monitored value and early stopping."""

    loss: object
    metrics: Sequence = ()
    monitor: str = "val_loss"
    mode: str = "min"
    early_stopping: type | None = None  # default: keras.callbacks.EarlyStopping
    class_weight: dict | None = None


class TrainingRun:
    """The skeleton of one training run (:meth:`execute`); a task's trainer fills in the hooks.

    Hooks run in this order, each after the previous one's attributes are set:

    1. :meth:`prepare_data` sets ``self.train_ds`` and ``self.val_ds`` (``(images, targets)`` batches);
    2. :meth:`build_model` returns the Keras model (inside the precision policy and the strategy's scope);
    3. :meth:`objective` returns its :class:`Objective`;
    4. :meth:`schedule` returns its :class:`Schedule` (may time steps of the model);
    5. :meth:`callbacks` returns ``(first, last)`` Keras callbacks around the standard ones;
    6. :meth:`config` returns what ``config.json`` records (a re-run with another config is refused);
    7. after fitting, :meth:`summary` adds the task's keys, :meth:`evaluate_test` returns the test report
       (``None`` without a test split), and :meth:`finish` may inspect the summary before it is written.

    Attributes set by the skeleton: ``plan``, ``dist`` (the strategy), ``run_logdir`` and ``policy`` (the
    precision policy name the model was built in).
    """

    def __init__(self, plan: RunPlan):
        self.plan = plan
        self.dist = None
        self.run_logdir = None
        self.policy = None

    # hooks ------------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        raise NotImplementedError

    def build_model(self):
        raise NotImplementedError

    def objective(self) -> Objective:
        raise NotImplementedError

    def schedule(self, net, objective: Objective) -> Schedule:
        raise NotImplementedError

    def callbacks(self, schedule: Schedule) -> tuple[list, list]:
        return [], []

    def config(self, schedule: Schedule) -> dict:
        raise NotImplementedError

    def summary(self, fitted: dict, net, schedule: Schedule) -> dict:
        return {}

    def evaluate_test(self) -> dict | None:
        return None

    def finish(self, summary: dict) -> None:
        pass

    # the skeleton -----------------------------------------------------------------------------------------
    def execute(self) -> dict:
        """Train the planned run (resuming it when its folder holds an unfinished one); returns the summary:
        the run folder, epochs run, wall seconds of fitting, the task's keys and the test report's headline keys."""
        import keras

        from recaptcha_tf.models.registry import model_cpu_bfloat16

        plan = self.plan
        self.dist, plan.out, self.run_logdir, plan.batch_size, (plan.learning_rate, plan.fine_tune_learning_rate) = (
            set_up_distribution(
                plan.strategy,
                plan.out,
                plan.logdir,
                plan.run_name,
                plan.batch_size,
                (plan.learning_rate, plan.fine_tune_learning_rate),
            )
        )
        self.prepare_data()
        keras.utils.set_random_seed(plan.seed)
        with precision_policy(plan.precision, model_cpu_bfloat16(plan.model)) as policy, self.dist.scope():
            self.policy = policy
            net = self.build_model()
            sync_batchnorm(self.dist, net)
            objective = self.objective()
            schedule = self.schedule(net, objective)
        first, last = self.callbacks(schedule)
        config = self.config(schedule)
        changed = changed_settings(plan.out, config)
        if changed:
            raise TrainingConfigError(
                f"{plan.out} holds a run trained with other settings ({', '.join(changed)}); resuming it would mix "
                "them. Use another --out, or --overwrite to start afresh."
            )
        finished = finished_summary(plan.out, config)
        if finished is not None:
            return finished
        fitted = fit_run(
            self.dist,
            net,
            plan.out,
            config,
            self.train_ds,
            self.val_ds,
            loss=objective.loss,
            metrics=objective.metrics,
            optimizer=plan.optimizer,
            epochs=schedule.epochs,
            steps_per_epoch=schedule.steps_per_epoch,
            repeat=schedule.repeat,
            freeze_epochs=plan.freeze_epochs,
            unfreeze=plan.unfreeze,
            learning_rate=plan.learning_rate,
            fine_tune_learning_rate=plan.fine_tune_learning_rate,
            run_logdir=self.run_logdir,
            monitor=objective.monitor,
            mode=objective.mode,
            patience=plan.patience,
            first_callbacks=first,
            last_callbacks=[*last, *plan.callbacks],
            early_stopping=objective.early_stopping,
            class_weight=objective.class_weight,
            replan=schedule.replan,
            warmup_epochs=schedule.warmup_epochs,
            learning_rate_schedule=schedule.learning_rate_schedule,
        )
        summary = {"out": plan.out, **fitted, **self.summary(fitted, net, schedule)}
        if is_chief_process(self.dist):
            report = self.evaluate_test()
            if report is not None:
                summary["test"] = {k: report[k] for k in plan.task.report_keys if k in report}
        self.finish(summary)
        plan.folder.write_json(summary, RunFolder.SUMMARY)
        finish_run(plan.out)
        return summary
