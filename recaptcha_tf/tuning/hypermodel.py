"""The task data, the keras-tuner ``HyperModel`` and the per-trial TensorBoard HParams logging.

:class:`CaptchaHyperModel` builds and compiles a registry model from a trial's
hyperparameters (one ``hp.Choice`` per key of the search space, none of them
conditional, so every trial has every hyperparameter and none drops out of the
HParams table), and fits it with its own callbacks: the text metrics, early
stopping, a TensorBoard writer in ``LOGDIR/<trial>`` and :class:`HParamsLogger`.
They are created inside ``fit`` for each trial, so they never need to be
deep-copied, and keras-tuner's own HParams hook (which only patches callbacks
named ``TensorBoard`` passed to ``search``) does not write a second, differently
laid out, copy.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from recaptcha_tf.models.precision import precision_policy
from recaptcha_tf.models.registry import model_cpu_bfloat16, model_head
from recaptcha_tf.tasks import get_task, task_defaults
from recaptcha_tf.tuning.spaces import model_kwargs as space_model_kwargs
from recaptcha_tf.utils.run_folder import write_json

TRIAL_INFO = "recaptcha_trial.json"


@dataclasses.dataclass
class TaskData:
    """Training and validation pipelines of one task, and what the model must know about them.

    ``labels`` are class names (tiles, chars) or the characters (text).
    Classifier targets are one-hot vectors (for label smoothing, focal loss and
    macro-F1); text targets are padded index sequences (CTC) or one-hot per position.
    """

    task: str
    model: str
    labels: list
    image_size: tuple[int, int]
    channels: int
    resize: str
    train: tf.data.Dataset
    val: tf.data.Dataset
    steps_per_epoch: int
    n_test: int = 0
    max_length: int = 0
    val_images: tf.data.Dataset | None = None
    val_texts: list | None = None
    text_input: dict = dataclasses.field(default_factory=dict)  # text: build_text_model's colour, crop, region
    augment_in_model: bool = False  # text with a per-image crop: the model augments after the crop


def _folder_split(task, data, out, fractions, seed, channels, write: bool):
    """The run's split; a distributed worker reads or recomputes it (seeded) but never writes it."""
    from recaptcha_tf.data.folders import scan_class_folders
    from recaptcha_tf.data.splits import MANIFEST_NAME, load_manifest, stratified_split

    if write:  # the task's own data preparation, as `train` does it (TaskSpec.workflows["prepare"])
        return get_task(task).workflow("prepare")(data, out, None, fractions, seed, channels)
    for folder in (out, data):
        if os.path.exists(os.path.join(folder, MANIFEST_NAME)):
            return load_manifest(folder)
    ds = scan_class_folders(data, channels=channels)
    return stratified_split(ds.paths, ds.labels, ds.class_names, fractions, seed, root=data)


def prepare_task_data(
    task: str,
    data: str,
    out: str,
    model: str,
    image_size: tuple[int, int] | None,
    channels: int,
    resize: str,
    batch_size: int,
    fractions="70/15/15",
    seed: int = 0,
    augment: bool = True,
    charset: str | None = None,
    case: str = "keep",
    label_pattern: str | None = None,
    write_split: bool = True,
    colour: str | None = None,
) -> TaskData:
    """Split ``data`` (manifest ``OUT/split.json``, reused on resume) and build the tf.data pipelines.

    Text runs take the input ``train --task text`` would (:func:`~recaptcha_tf.data.text.fit.choose_text_input`):
    size, crop and colour map fitted to the training images, ``image_size`` (``(H, W)`` pixels) if given;
    ``channels`` and ``resize`` apply to classifier tasks only; text runs take ``colour`` (``"ink"``, the
    default, or ``"gray"``) instead.
    """
    from recaptcha_tf.data.pipeline import make_dataset, text_augmentation, tile_augmentation

    if not get_task(task).sequence:
        split = _folder_split(task, data, out, fractions, seed, channels, write_split)
        n = len(split.class_names)
        (train_paths, train_labels), (val_paths, val_labels) = zip(*split.train), zip(*split.val)
        common = dict(image_size=image_size, channels=channels, resize=resize, batch_size=batch_size)
        train = make_dataset(
            train_paths,
            keras.utils.to_categorical(train_labels, n).astype("float32"),
            shuffle=True,
            seed=seed,
            augment=tile_augmentation(flip=get_task(task).flip_invariant, seed=seed) if augment else None,
            **common,
        )
        val = make_dataset(val_paths, keras.utils.to_categorical(val_labels, n).astype("float32"), **common)
        return TaskData(
            task,
            model,
            list(split.class_names),
            tuple(image_size),
            channels,
            resize,
            train,
            val,
            int(np.ceil(len(train_paths) / batch_size)),
            n_test=len(split.test),
        )

    from recaptcha_tf.data.text.fit import choose_text_input

    text = get_task(task).workflow("prepare")(
        data, out, charset, case, label_pattern, fractions, seed, write_split=write_split
    )
    kind = model_head(model)
    # The same input as `train --task text`: fitted to the training images unless --image-size is given.
    fit = choose_text_input(text.sources("train"), text.max_length, image_size, colour or "ink", seed=seed)
    channels = 3 if fit.colour == "ink" else 1
    augment_in_model = augment and fit.region is not None  # as train_text: after the per-image crop
    common = dict(image_size=fit.canvas_size(), channels=channels, resize=fit.resize, batch_size=batch_size)
    train = make_dataset(
        text.sources("train"),
        text.targets("train", kind),
        shuffle=True,
        seed=seed,
        augment=text_augmentation(seed) if augment and not augment_in_model else None,
        **common,
    )
    # validation on at most the task's "validation_images", the same seeded sample as `train --task text`
    from recaptcha_tf.data.text.task_data import validation_sample

    kept = validation_sample(len(text.parts["val"]), task_defaults(task)["validation_images"], seed)
    val_sources, val_texts = text.sources("val"), text.texts("val")
    val_sources, val_texts = [val_sources[i] for i in kept], [val_texts[i] for i in kept]
    val = make_dataset(val_sources, text.targets("val", kind)[kept], **common)
    return TaskData(
        task,
        model,
        list(text.vocab.characters),
        tuple(fit.image_size),
        channels,
        fit.resize,
        train,
        val,
        int(np.ceil(len(text.parts["train"]) / batch_size)),
        n_test=len(text.parts["test"]),
        max_length=text.max_length,
        val_images=make_dataset(val_sources, None, **common),
        val_texts=val_texts,
        text_input=dict(colour=fit.colour, crop=fit.crop, region=fit.region),
        augment_in_model=augment_in_model,
    )


def best_epoch(history: list[dict], objective: str, direction: str) -> int:
    """Index of the best epoch in a list of epoch logs (the last one when the objective is missing)."""
    values = [logs.get(objective) for logs in history]
    finite = [(v, i) for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    if not finite:
        return len(history) - 1
    return (
        max(finite, key=lambda t: (t[0], -t[1])) if direction == "max" else min(finite, key=lambda t: (t[0], t[1]))
    )[1]


def write_experiment_config(logdir: str, space: dict[str, list], metrics, objective: str) -> None:
    """The HParams experiment summary at the search's root: every hyperparameter's domain and the metrics."""
    from tensorboard.plugins.hparams import api as hp_api

    names = {
        "val_macro_f1": "val macro-F1",
        "val_accuracy": "val accuracy",
        "val_loss": "val loss",
        "val_cer": "val CER",
        "val_exact_match": "val exact match",
    }
    hparams = [hp_api.HParam(k, hp_api.Discrete(v)) for k, v in space.items()]
    metric_list = [
        hp_api.Metric(m, display_name=names.get(m, m) + (" (objective)" if m == objective else "")) for m in metrics
    ]
    metric_list += [
        hp_api.Metric("epochs", display_name="epochs run"),
        hp_api.Metric("seconds", display_name="trial seconds"),
    ]
    os.makedirs(logdir, exist_ok=True)
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        hp_api.hparams_config(hparams=hparams, metrics=metric_list)
    writer.flush()
    writer.close()


class HParamsLogger(keras.callbacks.Callback):
    """Writes one trial's HParams session (at train begin) and its metrics (at train end) to ``logdir``.

    The metrics are the values at the trial's best epoch by the objective (what
    keras-tuner scores the trial with), plus ``epochs`` run and wall ``seconds``.
    """

    def __init__(self, logdir: str | None, hparams: dict, trial_id: str, metrics, objective: str, direction: str):
        super().__init__()
        self.logdir, self.hparams, self.trial_id = logdir, dict(hparams), str(trial_id)
        self.metrics, self.objective, self.direction = list(metrics), objective, direction
        self.history: list[dict] = []
        self.summary: dict = {}

    def on_train_begin(self, logs=None):
        from tensorboard.plugins.hparams import api as hp_api

        self._start = time.perf_counter()
        self.history = []
        if not self.logdir:
            return
        self._writer = tf.summary.create_file_writer(self.logdir)
        with self._writer.as_default():
            hp_api.hparams(self.hparams, trial_id=self.trial_id)
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})

    def on_train_end(self, logs=None):
        seconds = time.perf_counter() - self._start
        best = best_epoch(self.history, self.objective, self.direction) if self.history else -1
        values = self.history[best] if self.history else {}
        self.summary = {
            "best_epoch": best + 1,
            "epochs": len(self.history),
            "seconds": round(seconds, 2),
            "metrics": {m: values[m] for m in self.metrics if m in values},
        }
        if not self.logdir:
            return
        step = len(self.history)
        with self._writer.as_default():
            for m, v in self.summary["metrics"].items():
                tf.summary.scalar(m, v, step=step)
            tf.summary.scalar("epochs", float(len(self.history)), step=step)
            tf.summary.scalar("seconds", seconds, step=step)
        self._writer.flush()
        self._writer.close()


LOSSES = {
    "sparse_categorical_crossentropy": lambda: keras.losses.CategoricalCrossentropy(),
    "label_smoothed_crossentropy": lambda: keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
    "focal": lambda: keras.losses.CategoricalFocalCrossentropy(),
    "ctc": lambda: keras.losses.CTC(),
}


class CaptchaHyperModel(kt.HyperModel):
    """Builds, compiles and fits a recaptcha_tf model for one trial's hyperparameters.

    Args:
        data: the task's pipelines (:func:`prepare_task_data`).
        space: validated search space (:func:`recaptcha_tf.tuning.load_search_space`).
        objective, direction: e.g. ``("val_macro_f1", "max")``.
        metrics: metric names reported per trial.
        epochs: epochs per trial (the cosine schedule spans them; Hyperband's maximum).
        patience: early-stopping patience on the objective (0 disables).
        learning_rate, optimizer, loss: values for keys the space does not search.
        model_kwargs: fixed builder arguments (searched values override them).
        logdir: TensorBoard root of the search; each trial writes ``logdir/trial_<id>``.
        project_dir: keras-tuner project folder, where each trial's summary JSON goes.
    """

    def __init__(
        self,
        data: TaskData,
        space: dict,
        objective: str,
        direction: str,
        metrics,
        epochs: int = 8,
        patience: int = 3,
        learning_rate: float = 1e-3,
        optimizer: str = "adam",
        loss: str | None = None,
        model_kwargs: dict | None = None,
        logdir: str | None = None,
        project_dir: str | None = None,
        precision: str = "auto",
        seed: int = 0,
        verbose: int = 0,
        learning_rate_scale: float = 1.0,
    ):
        super().__init__(name="recaptcha_tf", tunable=True)
        self.learning_rate_scale = learning_rate_scale  # replicas of a tf.distribute strategy (linear scaling)
        self.data, self.space, self.objective, self.direction = data, dict(space), objective, direction
        self.metrics, self.epochs, self.patience = list(metrics), epochs, patience
        self.defaults = {
            "learning_rate": learning_rate,
            "optimizer": optimizer,
            "loss": loss or ("ctc" if model_head(data.model) == "ctc" else "label_smoothed_crossentropy"),
        }
        self.fixed_kwargs = dict(model_kwargs or {})
        self.logdir, self.project_dir, self.precision, self.seed, self.verbose = (
            logdir,
            project_dir,
            precision,
            seed,
            verbose,
        )

    def values(self, hp) -> dict:
        """Declare one unconditional ``Choice`` per searched key and return the trial's full settings."""
        chosen = {k: hp.Choice(k, v) for k, v in self.space.items()}
        return {**self.defaults, **chosen}

    def build(self, hp):
        from recaptcha_tf.data.pipeline import text_augmentation
        from recaptcha_tf.models import build_classifier, build_text_model
        from recaptcha_tf.training.callbacks import build_optimizer, cosine_schedule, make_optimizer

        values = self.values(hp)
        d = self.data
        kwargs = space_model_kwargs(d.model, values, self.fixed_kwargs)
        keras.utils.set_random_seed(self.seed)  # every trial starts from the same initialisation
        with precision_policy(self.precision, model_cpu_bfloat16(d.model)):  # as `train` would
            if get_task(d.task).sequence:
                text_args = {"resize": d.resize, **d.text_input, **kwargs}  # --model-arg may override the fit
                model = build_text_model(
                    d.model,
                    "".join(d.labels),
                    d.image_size,
                    channels=d.channels,
                    max_length=d.max_length,
                    augmentation=text_augmentation(self.seed) if d.augment_in_model else None,
                    **text_args,
                )
                metrics = []
            else:
                model = build_classifier(d.model, d.labels, d.image_size, d.channels, d.resize, task=d.task, **kwargs)
                metrics = [
                    keras.metrics.CategoricalAccuracy(name="accuracy"),
                    keras.metrics.F1Score(average="macro", name="macro_f1"),
                ]
            model.compile(
                optimizer=make_optimizer(
                    values["optimizer"],
                    cosine_schedule(values["learning_rate"] * self.learning_rate_scale, self.epochs, d.steps_per_epoch),
                ),
                loss=LOSSES[values["loss"]](),
                metrics=metrics,
            )
            build_optimizer(model)
        return model

    def fit(
        self, hp, model, *args, trial_id=None, callbacks=None, epochs=None, initial_epoch=0, verbose=None, **kwargs
    ):
        from recaptcha_tf.training.callbacks import TextMetrics

        d = self.data
        trial_id = str(trial_id if trial_id is not None else "0")
        own: list[keras.callbacks.Callback] = []
        if get_task(d.task).sequence:
            own.append(TextMetrics(d.val_images, d.val_texts, d.labels, model_head(d.model)))
        if self.patience:
            own.append(
                keras.callbacks.EarlyStopping(monitor=self.objective, mode=self.direction, patience=self.patience)
            )
        hparams = {k: hp.values[k] for k in self.space}
        trial_logdir = os.path.join(self.logdir, f"trial_{trial_id}") if self.logdir else None
        logger = HParamsLogger(trial_logdir, hparams, trial_id, self.metrics, self.objective, self.direction)
        if trial_logdir:
            shutil.rmtree(trial_logdir, ignore_errors=True)  # a trial retried after an interruption starts clean
            own.append(keras.callbacks.TensorBoard(trial_logdir, write_graph=False, update_freq="epoch"))
        own.append(logger)
        # d.train is a shuffled tf.data pipeline; shuffle=False only stops Keras warning that it ignores shuffle=True.
        history = model.fit(
            d.train,
            validation_data=d.val,
            epochs=epochs or self.epochs,
            initial_epoch=initial_epoch,
            shuffle=False,
            callbacks=[*own, *(callbacks or [])],
            verbose=self.verbose if verbose is None else verbose,
        )
        if self.project_dir:
            info = {
                "trial_id": trial_id,
                "worker": os.environ.get("KERASTUNER_TUNER_ID", "tuner0"),
                "hyperparameters": hparams,
                **logger.summary,
            }
            write_json(info, os.path.join(self.project_dir, f"trial_{trial_id}", TRIAL_INFO))
        return history
