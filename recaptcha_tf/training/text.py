"""Training a text CAPTCHA reader: ``recaptcha-tf train --task text``, the demo and the notebooks.

The hooks of the run skeleton (:mod:`recaptcha_tf.training.run`) for text: the input size, crop and colour
handling are fitted to the training images, the training length is a budget of optimizer steps
(:func:`step_budget`), and the best checkpoint is evaluated on the test split.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.text.task_data import text_targets, text_task_data, validation_sample  # noqa: F401
from recaptcha_tf.evaluation.workflow import evaluate_text_dataset
from recaptcha_tf.tasks import get_task, task_defaults
from recaptcha_tf.tasks.objectives import training_objective
from recaptcha_tf.training.phases import TrainingConfigError, phase_settings, positive_or_default, shard_dataset
from recaptcha_tf.training.run import Objective, RunPlan, Schedule, TrainingRun
from recaptcha_tf.training.run_folder import weights_digest
from recaptcha_tf.training.step_time import seconds_per_step, steps_within, stored_measurement, time_budget_minutes

log = logging.getLogger("recaptcha_tf")


def default_patience(validation_images: int, evaluations: int, defaults: dict) -> int:
    """Early-stopping patience in evaluations when ``--patience`` is not given: a quarter of the evaluations
    (``patience_fraction``, at least 3), or 0, no early stopping, when fewer than ``early_stopping_min_validation``
    images validate (the run trains its whole budget and keeps its best evaluation's model).

    On so few images the validation CER reaches 0 within a few evaluations, and early stopping then compares
    validation losses alone: 100-label runs from ``universal`` (20 validating) stopped after a third to a half of
    their budget on ``jpeg-q10``, ``strike-through``, ``rgba-transparent`` and ``six-200x80``, below what training to
    the end reads (``benchmarks/label_curve.py --train-arg '{"patience": 0}'``; docs/shipped-models.md, "The 100-label
    point, run again")."""
    if validation_images < defaults["early_stopping_min_validation"]:
        return 0
    return max(3, int(np.ceil(defaults["patience_fraction"] * evaluations)))


def step_budget(steps_at_48x192: int, image_size: tuple[int, int]) -> int:
    """Optimizer steps for a text input of ``image_size``: ``steps_at_48x192`` for 48x192 and larger inputs, and
    for a smaller input as many more as take the same pixels (a 48x112 input gets 12/7 as many).

    A larger input is not given fewer steps: its run takes longer, and the time budget (``--time-budget``) is
    what holds it to 15 minutes of steps."""
    return max(steps_at_48x192, round(steps_at_48x192 * 48 * 192 / (image_size[0] * image_size[1])))


class TextRun(TrainingRun):
    """A text reader's run: the hooks of :class:`recaptcha_tf.training.run.TrainingRun`.

    Args:
        plan: the shared plan.
        options: the resolved text settings (charset, case, colour, steps, budget, ...), as :func:`train_text`
            resolves them.
    """

    def __init__(self, plan: RunPlan, **options):
        super().__init__(plan)
        self.o = options

    def prepare_data(self) -> None:
        from recaptcha_tf.data.pipeline import make_dataset, text_augmentation
        from recaptcha_tf.data.text.files import DEFAULT_LABEL_PATTERN
        from recaptcha_tf.data.text.fit import choose_text_input
        from recaptcha_tf.data.text.formats import load_text_dataset

        plan, o, d = self.plan, self.o, self.o["defaults"]
        columns = dict(image_column=o["image_column"], label_column=o["label_column"])
        text = plan.task.workflow("prepare")(
            plan.data, plan.out, o["charset"], o["case"], o["label_pattern"], o["fractions"], plan.seed,
            o["max_length"], **columns, merge_val=bool(o["val_data"]),
        )  # fmt: skip
        self.text, self.vocab, self.max_length = text, text.vocab, text.max_length
        image_size = o["image_size"]
        if image_size is None and o["weights_given"] and str(plan.weights).endswith(".keras"):
            from recaptcha_tf.inference.loading import load_model, model_info

            image_size = tuple(model_info(load_model(plan.weights)).image_size)  # the reader's own input
            log.info("--weights %s: its input, %dx%d (--image-size to choose another)", plan.weights, *image_size)
        self.fit = fit = choose_text_input(
            text.sources("train"), self.max_length, image_size, o["colour"], seed=plan.seed
        )
        self.channels = 3 if fit.colour == "ink" else 1
        self.repeat = not o["epochs"]  # a step budget runs over the repeated training set; --epochs: whole passes
        self.epochs = o["epochs"] or d["evaluations"]
        if plan.freeze_epochs >= self.epochs:
            raise TrainingConfigError(
                f"--freeze-epochs {plan.freeze_epochs} leaves no fine-tuning epochs of {self.epochs} epochs."
            )
        log.info("%s%s", fit.describe(), " (--image-size given)" if image_size else "")
        if o["val_data"]:
            extra = load_text_dataset(
                o["val_data"], pattern=o["label_pattern"] or DEFAULT_LABEL_PATTERN, case=o["case"], **columns
            )
            encoded = [self.vocab.encode(label, name) for label, name in zip(extra.labels, extra.names)]
            val = extra.sources, extra.labels, text_targets(encoded, self.max_length, self.vocab.size + 1, o["kind"])
        else:
            val = text.sources("val"), text.texts("val"), text.targets("val", o["kind"])
        self.val_count = len(val[0])
        if plan.patience is None:
            plan.patience = default_patience(self.val_count, self.epochs, d)
        self.kept = validation_sample(self.val_count, d["validation_images"], plan.seed)
        if len(self.kept) < self.val_count:
            log.info(
                "Validating on a seeded sample of %d of the %d validation images (each evaluation reads them "
                "twice); the test report reads the whole test split",
                len(self.kept),
                self.val_count,
            )
            val = [val[0][i] for i in self.kept], [val[1][i] for i in self.kept], val[2][self.kept]
        self.val_sources, self.val_texts, val_targets = val
        self.common = dict(
            image_size=fit.canvas_size(), channels=self.channels, resize=fit.resize, batch_size=plan.batch_size
        )
        # With a per-image text crop the pipeline's images are a canvas 10-20 times the network's input:
        # augmenting them cost a third of every step. The model then augments its own input, after the crop.
        self.augment_in_model = o["augment"] and fit.region is not None
        self.augment = augment = text_augmentation(plan.seed) if o["augment"] and not self.augment_in_model else None
        train_ds = make_dataset(
            text.sources("train"), text.targets("train", o["kind"]), shuffle=True, seed=plan.seed,
            augment=augment, **self.common,
        )  # fmt: skip
        val_ds = make_dataset(self.val_sources, val_targets, **self.common)
        self.train_ds, self.val_ds = shard_dataset(self.dist, train_ds), shard_dataset(self.dist, val_ds)
        if self.repeat:
            self.train_ds = self.train_ds.repeat()

    def build_model(self):
        from recaptcha_tf.data.pipeline import text_augmentation
        from recaptcha_tf.models import build_text_model

        plan, o, fit = self.plan, self.o, self.fit
        net = build_text_model(
            plan.model,
            self.vocab.characters,
            fit.image_size,
            channels=self.channels,
            resize=fit.resize,
            max_length=self.max_length,
            colour=fit.colour,
            crop=fit.crop,
            region=fit.region,
            augmentation=text_augmentation(plan.seed) if self.augment_in_model else None,
            **o["model_kwargs"],
            **({"weights": plan.weights} if o["weights_given"] else {}),
        )
        if o["weights_given"] and str(plan.weights).endswith(".keras"):  # a trained reader: the rest of it too
            from recaptcha_tf.models.text_transfer import transfer_text_weights

            used = "".join(sorted(set("".join(self.text.texts("train")))))  # the case the labels are in
            self.transfer = transfer_text_weights(net, plan.weights, self.vocab.characters, used)
        frames = net.output_shape[1]
        if o["kind"] == "ctc" and frames < 2 * self.max_length + 1:
            raise TrainingConfigError(
                f"The model reads {frames} frames, too few for labels of {self.max_length} characters; "
                "use a wider --image-size."
            )
        return net

    def objective(self) -> Objective:
        from recaptcha_tf.training.callbacks import PlateauAwareEarlyStopping

        return Objective(
            training_objective(self.o["kind"])[0], (), "val_cer_then_loss", "min", PlateauAwareEarlyStopping
        )

    def schedule(self, net, objective: Objective) -> Schedule:
        plan, o, d = self.plan, self.o, self.o["defaults"]
        self.step_seconds = None
        if not self.repeat:  # whole passes over the training set
            steps_per_epoch = int(np.ceil(len(self.text.parts["train"]) / plan.batch_size))
        else:  # the budget in a fixed number of "epochs" of equal steps
            default_steps = step_budget(d["steps"], self.fit.image_size)
            budget = o["steps"] or default_steps
            if not o["steps"] and o["time_budget"] and self.dist.num_replicas_in_sync == 1:
                # the default, held to the time budget; rounded as config.json stores it, so that a resumed run
                # computes the very same budget
                settings = dict(
                    model=plan.model, image_size=self.fit.image_size, batch_size=plan.batch_size, precision=self.policy
                )
                stored = stored_measurement(plan.out, "step_seconds", **settings)
                self.step_seconds = round(stored or seconds_per_step(net, objective.loss, self.train_ds), 4)
                budget = steps_within(default_steps, self.step_seconds, o["time_budget"])
                if budget < default_steps:
                    log.warning(
                        "the default %d steps take %.0f minutes here (%.3f s a step): running the %d that fit "
                        "--time-budget %g minutes; --steps N runs exactly N",
                        default_steps,
                        default_steps * self.step_seconds / 60,
                        self.step_seconds,
                        budget,
                        o["time_budget"],
                    )
            steps_per_epoch = int(np.ceil(budget / self.epochs))
        log.info(
            "%d epochs of %d steps (%d steps%s), %s",
            self.epochs,
            steps_per_epoch,
            self.epochs * steps_per_epoch,
            f", {self.step_seconds:.3f} s each here" if self.step_seconds else "",
            f"early stopping after {plan.patience} epochs without a better validation CER (or loss, at equal CER)"
            if plan.patience
            else f"no early stopping: {self.val_count} validation images are too few to judge by (the best "
            "evaluation's model is kept)",
        )
        config = (
            {"step_seconds": self.step_seconds, "time_budget_minutes": o["time_budget"]} if self.step_seconds else {}
        )
        # only when given, so that the configs (and resume checks) of runs without them stay as they were
        warmup_epochs = 1.0  # one evaluation's steps: 5% of the default budget
        if o["warmup_fraction"] is not None:
            warmup_epochs = o["warmup_fraction"] * self.epochs
            config["warmup_fraction"] = o["warmup_fraction"]
        if o["curriculum"]:
            config["curriculum"] = o["curriculum"]
            self.grow_label_lengths(round(o["curriculum"] * self.epochs * steps_per_epoch), steps_per_epoch)
        self.extension, epochs, learning_rate_schedule = None, self.epochs, None
        if o["plateau_extension"]:
            self.extension = self.plateau_extension(steps_per_epoch, warmup_epochs)
            config["plateau_extension"] = o["plateau_extension"]
            epochs, learning_rate_schedule = self.epochs + self.extension.extra, self.extension.learning_rate_schedule
        return Schedule(
            epochs,
            steps_per_epoch,
            repeat=self.repeat,
            config=config,
            warmup_epochs=warmup_epochs,
            learning_rate_schedule=learning_rate_schedule,
        )

    def plateau_extension(self, steps_per_epoch: int, warmup_epochs: float):
        """``--plateau-extension``: a budget that adds the evaluations spent on the blank plateau, up to that share
        of the planned ones (:class:`~recaptcha_tf.training.plateau.PlateauExtension`)."""
        from recaptcha_tf.training.plateau import PlateauExtension

        if not self.repeat or self.plan.freeze_epochs or self.o["kind"] != "ctc":
            raise TrainingConfigError(
                "--plateau-extension extends a CTC model's step budget in one phase; drop --epochs and "
                "--freeze-epochs, or the extension."
            )
        extra = max(1, round(self.o["plateau_extension"] * self.epochs))
        history = self.plan.folder.history  # read now and again once the backup has repaired it
        return PlateauExtension(self.epochs, extra, steps_per_epoch, warmup_epochs, history_path=history)

    def grow_label_lengths(self, curriculum_steps: int, steps_per_epoch: int) -> None:
        """``--curriculum``: the first ``curriculum_steps`` optimizer steps train in equal stages on the images whose
        labels are at most the shortest length, then one character longer, and so on (3, then up to 4, ... up to 7
        characters for labels of 3-8), as SortaGrad orders a first epoch by length; every image after that. A
        resumed run goes on from the steps it has done."""
        from recaptcha_tf.data.pipeline import curriculum_dataset, make_dataset
        from recaptcha_tf.training.callbacks import SafeBackupAndRestore
        from recaptcha_tf.training.run_folder import finished_epochs
        from recaptcha_tf.utils.run_folder import RunFolder

        plan, o = self.plan, self.o
        if not self.repeat:
            raise TrainingConfigError("--curriculum orders the steps of the step budget; drop --epochs.")
        lengths = np.array([len(t) for t in self.text.texts("train")])
        limits = sorted(set(lengths.tolist()))[:-1]  # the last stage is every image
        if not limits:
            log.info("--curriculum: every training label has %d characters; nothing to order", lengths[0])
            return
        sources, targets = self.text.sources("train"), self.text.targets("train", o["kind"])
        stages = []
        for limit in limits:
            kept = np.flatnonzero(lengths <= limit)
            stage = make_dataset(
                [sources[i] for i in kept], targets[kept], shuffle=True, seed=plan.seed, augment=self.augment,
                **self.common,
            ).repeat()  # fmt: skip
            stages.append(shard_dataset(self.dist, stage))
        boundaries = [round(curriculum_steps * (k + 1) / len(limits)) for k in range(len(limits))]
        restorable = SafeBackupAndRestore.restorable_epoch(plan.folder.file(RunFolder.BACKUP))
        done = (finished_epochs(plan.out, 0) if restorable is None else restorable) * steps_per_epoch
        self.train_ds = curriculum_dataset([*stages, self.train_ds], boundaries, done)
        log.info(
            "--curriculum: the first %d steps train on labels of at most %s characters in turn (%d steps each)%s",
            curriculum_steps,
            ", ".join(str(v) for v in limits),
            boundaries[0],
            f" ({done} done)" if done else "",
        )

    def callbacks(self, schedule: Schedule) -> tuple[list, list]:
        from recaptcha_tf.data.pipeline import make_dataset
        from recaptcha_tf.inference.decoding import decode_text_outputs
        from recaptcha_tf.training.callbacks import (
            BlankPlateauWarning,
            PredictionSamples,
            StartingPoint,
            TextMetrics,
            TimeBudget,
        )
        from recaptcha_tf.training.distribute import unsharded

        o, d, kind, characters = self.o, self.o["defaults"], self.o["kind"], self.vocab.characters
        val_images = unsharded(make_dataset(self.val_sources, None, cache=True, **self.common))
        first = [TextMetrics(val_images, self.val_texts, characters, kind)]
        if o["weights_given"] and str(self.plan.weights).endswith(".keras"):  # a trained reader: never end worse
            first.append(StartingPoint(first[0], self.plan.out, validation=self.val_ds))
        steps = self.epochs * schedule.steps_per_epoch  # the planned budget (--plateau-extension may add to it)
        self.plateau = BlankPlateauWarning(
            steps=max(1, steps // 3),
            steps_per_epoch=schedule.steps_per_epoch,
            remedy="check that the file names hold the labels, then try --weights universal (start from the shipped "
            "reader) or --plateau-extension 0.5 (extend the budget while it reads blanks); the run summary marks it "
            '"plateau": true',
        )
        last = [self.plateau] if kind == "ctc" else []
        if self.extension is not None:
            last.append(self.extension)
        if self.step_seconds:  # the steps were timed on a few: should they run slower (a loaded host), stop in time
            limit = o["time_budget"] * d["time_limit_factor"]
            last.append(TimeBudget(limit))
            log.info("training stops before an epoch that would end past %.3g minutes, should steps run slower", limit)
        if self.run_logdir:
            idx = list(range(min(12, len(self.val_sources))))
            images = make_dataset([self.val_sources[i] for i in idx], None, cache=False, **self.common)
            images = np.concatenate(list(images.as_numpy_iterator()))

            def describe(outputs):
                decoded = decode_text_outputs(outputs, characters, kind)
                return [t for t, _ in decoded], [float(np.prod(c)) if c else 0.0 for _, c in decoded]

            truth = [self.val_texts[i] for i in idx]
            last.append(PredictionSamples(images, truth, describe, self.run_logdir, every=10))
        return first, last

    def config(self, schedule: Schedule) -> dict:
        plan, o = self.plan, self.o
        config = {
            "task": plan.task.name,
            "model": plan.model,
            "characters": self.vocab.characters,
            "strict_charset": self.text.strict_charset,
            "max_length": self.max_length,
            "epochs": schedule.epochs,
            "steps_per_epoch": schedule.steps_per_epoch,
            "batch_size": plan.batch_size,
            **self.fit.to_config(),
            "learning_rate": plan.learning_rate,
            "seed": plan.seed,
            "case": o["case"],
            "model_kwargs": o["model_kwargs"],
            "precision": self.policy,
            "strategy": type(self.dist).__name__,
            "replicas": self.dist.num_replicas_in_sync,
            "weights": plan.weights,
            "weights_sha256": weights_digest(plan.weights),
            "freeze_epochs": plan.freeze_epochs,
            "unfreeze": plan.unfreeze,
            "fine_tune_learning_rate": plan.fine_tune_learning_rate,
            "data": os.path.abspath(plan.data)
            if isinstance(plan.data, (str, os.PathLike))
            else [os.path.abspath(p) for p in plan.data],
            **schedule.config,  # the default budget, held to --time-budget: a resumed run keeps this measurement
        }
        if len(self.kept) < self.val_count:  # only when sampled: smaller sets' configs (and resume checks) as before
            config["validation_images"] = len(self.kept)
        return config

    def summary(self, fitted: dict, net, schedule: Schedule) -> dict:
        return {
            "steps": fitted["epochs_run"] * schedule.steps_per_epoch,
            "image_size": list(self.fit.image_size),
            "crop": self.fit.crop,
            "content_region": self.fit.region,
            "plateau": self.plateau.on_plateau,
        }

    def evaluate_test(self) -> dict | None:
        self.report = None
        if not self.text.parts["test"]:
            return None
        folder = self.plan.folder
        test = self.text.dataset.subset(self.text.parts["test"])
        self.report = evaluate_text_dataset(  # readings folded as the labels were (--case)
            self.plan.out, test, report=folder.test_report, grid=folder.test_predictions, case=self.o["case"]
        )
        return self.report

    def finish(self, summary: dict) -> None:
        report = getattr(self, "report", None)
        if report is not None:
            blank = float(np.mean([not w["prediction"] for w in report.get("worst", [])] or [0.0]))
            if report["exact_match"] == 0 and blank == 1.0:
                summary["plateau"] = True
        if summary["plateau"]:
            log.warning(
                "the model reads (nearly) every image as empty text: it did not learn this set; see the "
                "warning above for what to try"
            )


def train_text(
    data: str,
    out: str = "models/text",
    model: str = "crnn",
    charset: str | None = None,
    case: str = "keep",
    label_pattern: str | None = None,
    image_size: tuple[int, int] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    patience: int | None = None,
    fractions="70/15/15",
    split: str | None = None,
    seed: int = 0,
    val_data: str | None = None,
    augment: bool = True,
    logdir: str | None = "logs",
    run_name: str | None = None,
    model_kwargs: dict | None = None,
    max_length: int | None = None,
    callbacks: Sequence = (),
    precision: str = "auto",
    strategy: str = "default",
    weights: str | None = None,
    freeze_epochs: int | None = None,
    unfreeze: int | str | None = None,
    fine_tune_learning_rate: float | None = None,
    steps: int | None = None,
    colour: str = "auto",
    grayscale: bool | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    time_budget: float | None = None,
    warmup_fraction: float | None = None,
    curriculum: float = 0.0,
    plateau_extension: float = 0.0,
) -> dict:
    """Train a text CAPTCHA reader (``crnn`` with CTC or ``multihead``).

    The input size, crop and colour handling are fitted to the training images
    (:func:`recaptcha_tf.data.text.fit.fit_text_input`) unless ``image_size`` is given,
    and the budget is ``steps`` optimizer updates whatever the set's size (default
    4,000, more for inputs smaller than 48x192 (:func:`step_budget`), and at most what
    ``time_budget`` minutes allow on this machine), run as 20 epochs of equal steps over
    the repeated training set, unless ``epochs`` is given.

    Args:
        data: folder of images named by label, a Parquet file, or a folder of Parquet files.
        charset: vocabulary (e.g. ``"a-z0-9"``); labels outside it are an error.
            By default ``a-z0-9`` plus any other characters in the labels.
        case: ``"keep"``, ``"lower"`` or ``"upper"``.
        weights: the convolutional backbone's starting weights: a ``.weights.h5`` file or a trained
            ``.keras`` text model with the same backbone (e.g. one trained on synthetic CAPTCHAs).
        freeze_epochs: a first phase with that backbone frozen (default 3 with ``weights``, else 0);
            then ``unfreeze`` (``"all"`` or the top N blocks) at ``fine_tune_learning_rate``.
        fractions: ``"70/15/15"``-style train/val/test percentages, or the path of a ``split.json``
            (an earlier run's, or one written with :mod:`recaptcha_tf.data.splits`) to repeat its split.
        split: the path of such a ``split.json`` (the classifiers' spelling of the same thing); it wins
            over ``fractions``.
        val_data: a separate validation set; then ``data`` is split only into train/test
            by ``fractions`` ignoring its val part.
        steps: optimizer updates in all (rounded up to a multiple of 20); ignored with ``epochs``.
        time_budget: minutes of training steps the default budget may take on this machine (default 15;
            ``0``: no limit). Without ``steps`` or ``epochs``, a few steps of a copy of the model are timed
            first (:mod:`recaptcha_tf.training.step_time`), and the default budget is cut to what fits; the
            measurement is recorded in ``config.json`` and reused when the run resumes. Should the steps then
            run slower, training stops before an epoch that would end past 4/3 of the budget (20 minutes).
        colour: ``"auto"`` (the task default, ``"ink"``), ``"ink"`` (distance from each image's
            background colour, any polarity or text colour) or ``"gray"`` (grayscale, padded).
        grayscale: the classifiers' spelling of ``colour="gray"`` (``--grayscale``); ``True`` with
            ``colour="ink"`` is an error.
        image_column, label_column: Parquet column names (default: detected).
        warmup_fraction: share of the step budget over which the learning rate rises linearly from 0 (default:
            one evaluation's steps, 1/20 of the budget).
        curriculum: share of the step budget trained on labels of growing length (the shortest first, one
            character more at each equal stage) before every image (default 0: none; needs the step budget, not
            ``epochs``).
        plateau_extension: the most steps, as a share of the budget, that evaluations still reading blanks (the
            CTC plateau) may add to the run; their steps are also held out of the learning-rate schedule
            (:class:`~recaptcha_tf.training.plateau.PlateauExtension`; default 0: none). ``time_budget``'s
            hard limit still holds.

    Returns:
        Summary with epochs and steps run, wall time (s), the chosen input, ``plateau`` (the model
        still reads every image as empty text) and the test report (exact match, CER).
    """
    from recaptcha_tf.models.registry import model_head

    d = task_defaults("text")
    task_spec = get_task("text")
    if grayscale and colour == "ink":
        raise ValueError("--grayscale and --colour ink contradict each other; pass one of them.")
    colour = "gray" if grayscale else d["colour"] if colour in (None, "auto") else colour
    if colour not in ("ink", "gray"):
        raise ValueError(f"--colour must be auto, ink or gray, got {colour!r}.")
    epochs, batch_size, learning_rate, steps = positive_or_default(
        {**d, "epochs": None, "steps": None},
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps=steps,
    )
    task_spec.check_model(model, dict(model_kwargs or {}))
    weights_given = weights is not None
    weights, freeze_epochs, fine_tune_learning_rate = phase_settings(
        weights, freeze_epochs, epochs or 2**31, learning_rate, fine_tune_learning_rate, d["weights_freeze_epochs"]
    )
    plan = RunPlan(
        task_spec, data, out, model, seed, batch_size, learning_rate, fine_tune_learning_rate, weights,
        freeze_epochs, "all" if unfreeze is None else unfreeze, patience, "adam", precision, strategy, logdir,
        run_name, tuple(callbacks),
    )  # fmt: skip
    return TextRun(
        plan,
        defaults=d,
        kind=model_head(model),
        charset=charset,
        case=case,
        label_pattern=label_pattern,
        image_size=image_size,
        colour=colour,
        epochs=epochs,
        steps=steps,
        time_budget=time_budget_minutes(time_budget, d["time_budget_minutes"]),
        warmup_fraction=warmup_fraction,
        curriculum=curriculum,
        plateau_extension=plateau_extension,
        fractions=split or fractions,
        max_length=max_length,
        val_data=val_data,
        augment=augment,
        model_kwargs=dict(model_kwargs or {}),
        weights_given=weights_given,
        image_column=image_column,
        label_column=label_column,
    ).execute()
