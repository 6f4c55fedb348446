"""Training a tile or character classifier: ``recaptcha-tf train --task tiles|chars`` and the notebooks.

The hooks of the run skeleton (:mod:`recaptcha_tf.training.run`) for class-folder tasks: split first (manifest
written next to the run), then optional balancing of the training split only, then the tf.data pipeline, model,
callbacks and fit, and finally an evaluation of the best checkpoint on the held-out test split. Re-running the same
call resumes the run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.class_split import (  # prepare_*: their home before 0.2.0
    prepare_folder_split,  # noqa: F401
    prepare_multilabel_split,
    sample_indices,
)
from recaptcha_tf.evaluation.workflow import evaluate
from recaptcha_tf.tasks import get_task, task_defaults
from recaptcha_tf.tasks.objectives import training_objective
from recaptcha_tf.training.phases import TrainingConfigError, phase_settings, positive_or_default, shard_dataset
from recaptcha_tf.training.run import Objective, RunPlan, Schedule, TrainingRun
from recaptcha_tf.training.run_folder import weights_digest
from recaptcha_tf.training.step_time import recipe_epochs_within, replanned_epochs, time_budget_minutes

log = logging.getLogger("recaptcha_tf")


class ClassifierRun(TrainingRun):
    """A tile or character classifier's run: the hooks of :class:`recaptcha_tf.training.run.TrainingRun`.

    Args:
        plan: the shared plan.
        options: the resolved task-specific settings (image size, channels, resize, balancing, mixing, ...), as
            :func:`train_classifier` resolves them.
    """

    def __init__(self, plan: RunPlan, **options):
        super().__init__(plan)
        self.o = options

    def prepare_data(self) -> None:
        import keras

        from recaptcha_tf.data.pipeline import make_dataset, multi_hot, tile_augmentation

        plan, o = self.plan, self.o
        if o["multi_label"]:
            self.split = prepare_multilabel_split(
                plan.data, plan.out, o["labels_csv"], o["split"], o["fractions"], plan.seed, o["channels"],
                o["allow_outside_data"],
            )  # fmt: skip
        else:
            self.split = plan.task.workflow("prepare")(
                plan.data, plan.out, o["split"], o["fractions"], plan.seed, o["channels"], o["balance_per_class"],
                o["balance_cap"], o["balanced_dir"], o["balance_up_to"], flip=plan.task.flip_invariant,
            )  # fmt: skip
        names, num_classes = self.split.class_names, len(self.split.class_names)
        self.train_paths, train_labels = zip(*self.split.train)
        self.val_paths, self.val_labels = zip(*self.split.val)
        if not o["epochs"]:  # epochs from the set's size: about d["steps"] updates, within d["epochs_range"]
            low, high = o["defaults"]["epochs_range"]
            steps = np.ceil(len(self.train_paths) / plan.batch_size)
            o["epochs"] = int(np.clip(np.ceil(o["defaults"]["steps"] / steps), low, high))
            log.info(
                "%d epochs for %d training images (about %d steps), early stopping after %d epochs without a better %s",
                o["epochs"],
                len(self.train_paths),
                o["defaults"]["steps"],
                plan.patience,
                o["defaults"]["monitor"][0],
            )
        if plan.freeze_epochs >= o["epochs"]:
            raise TrainingConfigError(
                f"--freeze-epochs {plan.freeze_epochs} leaves no fine-tuning epochs of {o['epochs']} epochs."
            )

        teachers = o["teachers"]
        if teachers:
            from recaptcha_tf.training.distillation import packed_targets, teacher_probabilities

            soft = {
                "train": teacher_probabilities(teachers, self.train_paths, names),
                "val": teacher_probabilities(teachers, self.val_paths, names),
            }

        def targets(labels, part):
            if o["multi_label"]:
                return multi_hot(labels, num_classes)
            if teachers:  # [one-hot, the teachers' probabilities]: training.distillation.DistillationLoss
                return packed_targets(keras.utils.to_categorical(labels, num_classes), soft[part])
            return keras.utils.to_categorical(labels, num_classes) if o["one_hot"] else np.array(labels)

        self.common = dict(
            image_size=o["image_size"], channels=o["channels"], resize=o["resize"], batch_size=plan.batch_size
        )
        augment = tile_augmentation(flip=plan.task.flip_invariant, seed=plan.seed) if o["augment"] else None
        train_ds = make_dataset(
            self.train_paths, targets(train_labels, "train"), shuffle=True, seed=plan.seed, cache=o["cache"],
            augment=augment, mix=o["mixing"], **self.common,
        )  # fmt: skip
        val_ds = make_dataset(self.val_paths, targets(self.val_labels, "val"), cache=o["cache"], **self.common)
        self.train_ds, self.val_ds = shard_dataset(self.dist, train_ds), shard_dataset(self.dist, val_ds)
        self.class_names = names

    def build_model(self):
        from recaptcha_tf.models import build_classifier

        plan, o = self.plan, self.o
        if o["warm_start"]:  # a trained classifier, whole, with its head rebuilt for these classes
            from recaptcha_tf.models.warm_start import classifier_from

            return classifier_from(plan.weights, self.class_names, plan.task.name)
        kwargs = dict(o["model_kwargs"]) | ({"weights": plan.weights} if o["weights_given"] else {})
        return build_classifier(
            plan.model, self.class_names, o["image_size"], o["channels"], o["resize"],
            multi_label=o["multi_label"], threshold=o["threshold"], task=plan.task.name, **kwargs,
        )  # fmt: skip

    def objective(self) -> Objective:
        from recaptcha_tf.models.registry import model_head
        from recaptcha_tf.training.class_weights import loss_class_weights, weigh_by_class

        o = self.o
        loss, metrics = training_objective(
            model_head(self.plan.model),
            multi_label=o["multi_label"],
            one_hot=o["one_hot"],
            label_smoothing=o["label_smoothing"],
            threshold=o["threshold"],
        )
        if o["teachers"]:
            from recaptcha_tf.training.distillation import DistillationLoss, PackedAccuracy

            classes = len(self.class_names)
            loss = DistillationLoss(classes, o["distill_alpha"], o["distill_temperature"], o["label_smoothing"])
            metrics = [PackedAccuracy(classes)]
        monitor, mode = ("val_loss", "min") if o["multi_label"] else o["defaults"].get("monitor", ("val_loss", "min"))
        weights = loss_class_weights(o["class_weight"], self.split)
        if weights is not None:  # per-image weights read from the label half of any target (training.class_weights)
            self.train_ds = weigh_by_class(self.train_ds, weights, len(self.class_names))
        return Objective(loss, metrics, monitor, mode)

    def schedule(self, net, objective: Objective) -> Schedule:
        from recaptcha_tf.training.callbacks import TimeBudget

        plan, o = self.plan, self.o
        epochs, steps = o["epochs"], int(np.ceil(len(self.train_paths) / plan.batch_size))
        self.time_budget_callbacks = []
        if not (o["recipe"] and not o["epochs_given"] and o["time_budget"] and self.dist.num_replicas_in_sync == 1):
            return Schedule(epochs, steps)
        validation_steps = int(np.ceil(len(self.val_paths) / plan.batch_size))
        settings = dict(
            model=plan.model, image_size=o["image_size"], batch_size=plan.batch_size, precision=self.policy,
            unfreeze=plan.unfreeze,
        )  # fmt: skip
        timing = recipe_epochs_within(
            net, objective.loss, self.train_ds, plan.out, settings, epochs, plan.freeze_epochs, plan.unfreeze,
            steps, validation_steps, o["time_budget"],
        )  # fmt: skip
        epochs = timing.pop("epochs")
        measured = (timing["frozen_step_seconds"], timing["step_seconds"], o["time_budget"], timing["read_seconds"])

        def replan(frozen_epoch_seconds: float) -> int:  # phase 1's real epochs re-plan phase 2 (fit_in_phases)
            return replanned_epochs(
                epochs, plan.freeze_epochs, steps, validation_steps, *measured, frozen_epoch_seconds
            )

        self.time_budget_callbacks = [TimeBudget(o["time_budget"])]  # should the epochs run longer than estimated
        return Schedule(epochs, steps, replan=replan, config=timing)

    def callbacks(self, schedule: Schedule) -> tuple[list, list]:
        from recaptcha_tf.data.pipeline import make_dataset
        from recaptcha_tf.training.callbacks import PredictionSamples

        budget = list(getattr(self, "time_budget_callbacks", []))  # the time budget holds without TensorBoard too
        if not self.run_logdir:
            return [], budget
        names, labels = self.class_names, self.val_labels
        idx = sample_indices(labels, 12, self.plan.seed)
        images = make_dataset([self.val_paths[i] for i in idx], None, cache=False, **self.common)
        images = np.concatenate(list(images.as_numpy_iterator()))

        def describe(outputs):
            return [names[int(k)] for k in outputs.argmax(1)], [float(p.max()) for p in outputs]

        def truth(label):
            return "+".join(names[j] for j in label) if isinstance(label, (list, tuple)) else names[label]

        samples = PredictionSamples(images, [truth(labels[i]) for i in idx], describe, self.run_logdir, every=5)
        return [], [samples, *budget]

    def config(self, schedule: Schedule) -> dict:
        plan, o = self.plan, self.o
        return {
            "task": plan.task.name,
            "model": plan.model,
            "image_size": o["image_size"],
            "channels": o["channels"],
            "resize": o["resize"],
            "epochs": schedule.epochs,
            "batch_size": plan.batch_size,
            "learning_rate": plan.learning_rate,
            "optimizer": plan.optimizer,
            "label_smoothing": o["label_smoothing"],
            "mix": o["mix"],
            "class_weight": o["class_weight"],
            "seed": plan.seed,
            "balance_per_class": self.split.extra.get("balanced", {}).get("per_class"),
            "model_kwargs": o["model_kwargs"],
            "precision": self.policy,
            "weights": plan.weights,
            "weights_sha256": weights_digest(plan.weights),
            "freeze_epochs": plan.freeze_epochs,
            "unfreeze": plan.unfreeze,
            "fine_tune_learning_rate": plan.fine_tune_learning_rate,
            "multi_label": o["multi_label"],
            "threshold": o["threshold"],
            "labels": o["labels_csv"] and os.path.abspath(o["labels_csv"]),
            "data": os.path.abspath(plan.data),
            "strategy": type(self.dist).__name__,
            "replicas": self.dist.num_replicas_in_sync,
            **schedule.config,  # the recipe's epochs held to the time budget: a resumed run keeps these measurements
            **self.distillation_config(),
        }

    def distillation_config(self) -> dict:
        """The teachers and the mix of hard and soft targets; nothing without teachers (older configs unchanged)."""
        o = self.o
        if not o["teachers"]:
            return {}
        teachers = [os.path.abspath(t) for t in o["teachers"]]
        return {
            "teachers": teachers,
            "distill_alpha": o["distill_alpha"],
            "distill_temperature": o["distill_temperature"],
        }

    def summary(self, fitted: dict, net, schedule: Schedule) -> dict:
        seconds = round(fitted["train_seconds"] / max(fitted["epochs_this_session"], 1), 1)
        return {"seconds_per_epoch": seconds, "parameters": int(net.count_params())}

    def finish(self, summary: dict) -> None:
        if getattr(self, "calibration", None):
            summary["calibration"] = self.calibration

    def evaluate_test(self) -> dict | None:
        if not self.o["multi_label"] and self.o["calibrate"]:
            from recaptcha_tf.training.calibrate import calibrate_model

            self.calibration = calibrate_model(self.plan.folder.model, self.val_paths, self.val_labels)
        if not self.split.test:
            return None
        return evaluate(self.plan.out, self.plan.data, subset="test", report=self.plan.folder.test_report)


def train_classifier(
    data: str,
    out: str = "models/run",
    task: str = "tiles",
    model: str | None = None,
    image_size: tuple[int, int] | None = None,
    grayscale: bool | None = None,
    resize: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    label_smoothing: float | None = None,
    patience: int | None = None,
    split: str | None = None,
    fractions="70/15/15",
    seed: int = 0,
    balance_per_class: int | None = None,
    balance_cap: int | None = None,
    balanced_dir: str | None = None,
    class_weight: str = "none",
    augment: bool = True,
    mix: str = "none",
    cache: bool | str = True,
    logdir: str | None = "logs",
    run_name: str | None = None,
    model_kwargs: dict | None = None,
    callbacks: Sequence = (),
    precision: str = "auto",
    weights: str | None = None,
    freeze_epochs: int | None = None,
    unfreeze: int | str | None = None,
    fine_tune_learning_rate: float | None = None,
    multi_label: bool = False,
    labels_csv: str | None = None,
    threshold: float = 0.5,
    strategy: str = "default",
    allow_outside_data: bool = False,
    time_budget: float | None = None,
    teachers: Sequence[str] = (),
    distill_alpha: float | None = None,
    distill_temperature: float | None = None,
    calibrate: bool = True,
) -> dict:
    """Train a tile or character classifier on a class-folder dataset (or a multi-label CSV).

    Re-running the same call with the same ``out`` resumes an interrupted run
    (BackupAndRestore) with the same split, in either fine-tuning phase.

    Args:
        balance_per_class: oversample every training class to this many images with Augmentor
            (into ``balanced_dir``, default ``out/balanced_images``); ``0`` turns balancing off;
            ``None`` takes the task's default (tiles: classes smaller than ``min(500, largest class)``
            are oversampled to it; single-label runs without ``class_weight="balanced"`` only).
        class_weight: ``"none"``; ``"balanced"`` (inverse class frequency, instead of oversampling); or named
            weights ``"NAME=W[,NAME=W...]"`` that multiply those classes' training loss, e.g. ``"other=3"``
            (:mod:`recaptcha_tf.training.class_weights`).
        mix: ``"mixup"`` or ``"cutmix"`` blends pairs of training images and their labels
            (Keras's MixUp / CutMix layers, after the other augmentation); ``"none"``.
        label_smoothing: cross-entropy label smoothing (default 0.1, or the model's recipe's).
        weights: backbone weights: ``None``, ``"imagenet"``, a local ``.weights.h5`` file, or for
            keras-hub models a preset name or preset folder. With weights, the model's registered
            transfer recipe (:func:`recaptcha_tf.models.pretrained_recipe`: image size, epochs,
            phases, learning rates, batch size, label smoothing) replaces the task's defaults for
            every argument left ``None``.
        freeze_epochs: epochs of phase 1 (backbone frozen, head trained at ``learning_rate``);
            default 3 with pretrained ``weights`` (or the recipe's), else 0 (one phase).
        unfreeze: phase 2 unfreezes ``"all"`` of the backbone or its top N blocks (default ``"all"``
            or the recipe's).
        fine_tune_learning_rate: peak learning rate of phase 2 (default ``learning_rate / 10``
            after a frozen phase).
        multi_label: sigmoid head with binary cross-entropy; labels from ``labels_csv``
            (``path,labels`` with ``;``-separated labels) or, without it, the class folders.
        threshold: sigmoid decision threshold stored in the model.
        allow_outside_data: accept ``labels_csv`` paths outside ``data`` (absolute or ``../``).
        strategy: ``tf.distribute`` strategy (:mod:`recaptcha_tf.training.distribute`); ``batch_size``
            is per replica and the learning rates scale with the number of replicas.
        time_budget: minutes of training a transfer recipe's epochs may take on this machine (default the
            recipe's ``time_budget_minutes``; 0: no limit). A step with the backbone trainable and one with it
            frozen are timed first (:mod:`.step_time`) and the recipe's epochs cut to what fits, keeping
            its frozen epochs and at least one fine-tuning epoch; the measurements go into ``config.json`` and a
            resumed run reuses them. Not with ``epochs`` or more than one replica.
        teachers: run folders (or ``.keras`` files) of single-label classifiers with the same classes: the student
            learns from their averaged probabilities too (:mod:`recaptcha_tf.training.distillation`).
        distill_alpha: weight of the hard labels in the distillation loss (default 0.3; the soft targets get the rest).
        distill_temperature: temperature of the soft targets (default 2).
        calibrate: single-label: after training, fit the temperature and choose the ``--min-confidence`` default on
            the validation split, stored in ``model.keras`` (:mod:`recaptcha_tf.training.calibrate`).

    Returns:
        Summary with the run folder, epochs run, wall time (s) and the test report.
    """
    from recaptcha_tf.data.pipeline import batch_mixing
    from recaptcha_tf.models import pretrained_recipe
    from recaptcha_tf.models.weights import parse_weights

    task_spec = get_task(task)
    parsed = parse_weights(weights)
    warm = None
    if parsed and str(parsed).endswith(".keras"):  # a trained classifier (`--weights tiles`): fine-tune it whole
        from recaptcha_tf.models.warm_start import source_info

        warm = source_info(parsed)
        model = model or warm["architecture"]
        image_size, resize = image_size or warm["image_size"], resize or warm["resize"]
        grayscale = grayscale if grayscale is not None else warm["channels"] == 1
        log.info("--weights %s: its %s at %dx%d, classes %s", weights, model, *warm["image_size"], warm["names"])
    model = model or task_defaults(task)["model"]
    # With pretrained weights the model's own transfer recipe (registry) fills in what the caller left unset.
    recipe = pretrained_recipe(model) if parsed and not warm else {}
    d = task_defaults(task) | recipe
    if warm:  # a trained model fine-tunes at a tenth of the task's learning rate, in one phase
        d["learning_rate"] = d["learning_rate"] / 10
    if model == task_defaults(task)["model"]:  # the task's default model comes with its default arguments
        model_kwargs = {**d.get("model_kwargs", {}), **(model_kwargs or {})}
    if recipe:
        log.info("Pretrained %s: transfer recipe %s (explicit arguments win)", model, recipe)
    epochs_given = epochs is not None
    epochs, batch_size, learning_rate = positive_or_default(
        d, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
    )
    label_smoothing = d.get("label_smoothing", 0.1) if label_smoothing is None else label_smoothing
    unfreeze = d.get("unfreeze", "all") if unfreeze is None else unfreeze
    if freeze_epochs is None and recipe.get("freeze_epochs") is not None:
        # the recipe's frozen phase, leaving at least one fine-tuning epoch when the user asked for fewer epochs
        freeze_epochs = min(recipe["freeze_epochs"], epochs - 1) if epochs else recipe["freeze_epochs"]
    weights_given = weights is not None
    weights, freeze_epochs, fine_tune_learning_rate = phase_settings(
        weights,
        freeze_epochs,
        epochs or 2**31,
        learning_rate,
        fine_tune_learning_rate or d.get("fine_tune_learning_rate"),
        0 if warm else 3,
    )
    if multi_label and (balance_per_class or class_weight != "none"):
        raise ValueError("--balance and --class-weight are for single-label data, not --multi-label.")
    from recaptcha_tf.training.class_weights import parse_class_weight
    from recaptcha_tf.training.distillation import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, TeacherError

    teachers = tuple(teachers or ())
    if teachers and multi_label:
        raise TeacherError("--teacher is for single-label classifiers, not --multi-label.")
    distill_alpha = DEFAULT_ALPHA if distill_alpha is None else float(distill_alpha)
    distill_temperature = DEFAULT_TEMPERATURE if distill_temperature is None else float(distill_temperature)
    if not 0 <= distill_alpha <= 1 or distill_temperature <= 0:
        raise TeacherError("--distill-alpha must be from 0 to 1 and --distill-temperature positive.")
    mixing = batch_mixing(mix, seed)  # validates the name before any work
    if not warm:
        task_spec.check_model(model, dict(model_kwargs or {}) | ({"weights": weights} if weights_given else {}))
    parse_class_weight(class_weight)  # its form now; its class names once the data is read
    default_balance = balance_per_class is None and not multi_label and class_weight != "balanced"
    plan = RunPlan(
        task_spec, data, out, model, seed, batch_size, learning_rate, fine_tune_learning_rate, weights,
        freeze_epochs, unfreeze, d["patience"] if patience is None else patience, optimizer, precision, strategy,
        logdir, run_name, tuple(callbacks),
    )  # fmt: skip
    return ClassifierRun(
        plan,
        defaults=d,
        recipe=recipe,
        image_size=tuple(image_size or d["image_size"]),
        channels=1 if (grayscale if grayscale is not None else d["channels"] == 1) else 3,
        resize=resize or d["resize"],
        epochs=epochs,
        epochs_given=epochs_given,
        time_budget=time_budget_minutes(time_budget, d.get("time_budget_minutes", 0)),
        label_smoothing=label_smoothing,
        one_hot=bool(label_smoothing) or mixing is not None or bool(teachers),
        teachers=teachers,
        calibrate=calibrate,
        warm_start=bool(warm),
        distill_alpha=distill_alpha,
        distill_temperature=distill_temperature,
        mix=mix,
        mixing=mixing,
        augment=augment,
        cache=cache,
        class_weight=class_weight,
        model_kwargs=dict(model_kwargs or {}),
        weights_given=weights_given,
        multi_label=multi_label,
        labels_csv=labels_csv,
        threshold=threshold,
        split=split,
        fractions=fractions,
        balance_per_class=balance_per_class,
        balance_cap=balance_cap,
        balanced_dir=balanced_dir,
        balance_up_to=d.get("balance_up_to", 0) if default_balance else 0,
        allow_outside_data=allow_outside_data,
    ).execute()
