import csv
import json
import os
import time

import keras
import numpy as np
import pytest
from conftest import make_class_folders

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.images import CorruptImageError
from recaptcha_tf.evaluation.workflow import evaluate
from recaptcha_tf.inference.loading import load_model
from recaptcha_tf.inference.predictor import predict
from recaptcha_tf.training.classifier import prepare_folder_split, train_classifier

TINY = dict(conv_layers=2, filters=8, dense_units=16)


class Interrupt(keras.callbacks.Callback):
    """Simulates a killed run: raises after ``after`` completed epochs."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt("simulated kill")


def _epochs_logged(out):
    with open(os.path.join(out, "history.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_one_epoch_train_saves_reloads_in_safe_mode_and_predicts(tiles_dir, tmp_path):
    out = str(tmp_path / "run")
    summary = train_classifier(
        tiles_dir, out, image_size=(24, 24), epochs=1, logdir=str(tmp_path / "logs"), model_kwargs=TINY
    )
    assert summary["epochs_run"] == 1 and summary["test"]["n"] == 6
    for name in ("model.keras", "split.json", "history.csv", "test_report.json", "config.json"):
        assert os.path.exists(os.path.join(out, name)), name
    assert os.path.isdir(tmp_path / "logs" / "run" / "train") and os.listdir(tmp_path / "logs" / "run" / "samples")
    model = load_model(out)  # safe_mode=True inside
    files = [os.path.join(tiles_dir, "bus", "0000.png"), os.path.join(tiles_dir, "hydrant", "0003.png")]
    results = predict(model, files)
    assert len(results) == 2
    for r in results:
        assert r["label"] in ("bus", "hydrant", "traffic_light")
        assert 0 <= r["confidence"] <= 1 and len(r["top_k"]) == 3
    truncated = tmp_path / "truncated.png"  # a PNG header and nothing else: only the full decode finds out
    truncated.write_bytes(open(files[0], "rb").read()[:60])
    with pytest.raises(CorruptImageError, match="truncated.png"):
        predict(model, [files[0], str(truncated), files[1]])
    # Raw uint8 images of another size go straight into the model.
    out_probs = model.predict(np.zeros((1, 57, 41, 3), np.uint8), verbose=0)
    assert out_probs.shape == (1, 3)
    report = json.load(open(os.path.join(out, "test_report.json")))
    assert {
        "n",
        "top1",
        "top3",
        "balanced_accuracy",
        "macro_f1",
        "per_class",
        "confusion_matrix",
        "class_names",
    } <= set(report)


def test_a_run_traces_its_train_step_once(tiles_dir, tmp_path, monkeypatch):
    # Keras on TensorFlow creates the optimizer's variables while tracing the first step unless they are built
    # before fit, and a tf.function that creates variables is traced twice (a CRNN's trace costs seconds on CPU).
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    traced = []
    original = TensorFlowTrainer.train_step

    def counted(self, data):
        traced.append(self.name)
        return original(self, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", counted)
    summary = train_classifier(
        tiles_dir, str(tmp_path / "run"), image_size=(24, 24), epochs=2, logdir=None, model_kwargs=TINY
    )
    assert summary["epochs_run"] == 2 and len(traced) == 1


@pytest.mark.slow
def test_training_learns_an_easy_task(tmp_path):
    data = str(tmp_path / "d")
    make_class_folders(data, per_class=20)
    # 42 training images make one batch: 30 epochs are 30 optimizer steps (8 were too few to learn reliably)
    summary = train_classifier(
        data,
        str(tmp_path / "run"),
        image_size=(24, 24),
        epochs=30,
        logdir=None,
        learning_rate=3e-3,
        model_kwargs=TINY,
        patience=0,
    )
    assert summary["test"]["top1"] >= 0.75


def test_batch_mixing_trains_on_one_hot_targets_even_without_label_smoothing(tiles_dir, tmp_path):
    out = str(tmp_path / "run")
    summary = train_classifier(
        tiles_dir, out, image_size=(24, 24), epochs=1, logdir=None, model_kwargs=TINY, label_smoothing=0.0, mix="cutmix"
    )
    assert summary["epochs_run"] == 1 and summary["test"]["n"] == 6
    assert json.load(open(os.path.join(out, "config.json")))["mix"] == "cutmix"
    with pytest.raises(ValueError, match="Unknown mix"):
        train_classifier(tiles_dir, str(tmp_path / "bad"), epochs=1, logdir=None, mix="mosaic")
    assert not os.path.exists(str(tmp_path / "bad"))  # rejected before the split or any balancing


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(tiles_dir, tmp_path):
    out = str(tmp_path / "run")
    kwargs = dict(image_size=(24, 24), epochs=4, logdir=None, model_kwargs=TINY, patience=0)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(tiles_dir, out, callbacks=[Interrupt(after=2)], **kwargs)
    assert os.path.isdir(os.path.join(out, "backup"))
    assert _epochs_logged(out) == [0, 1]
    split_before = open(os.path.join(out, "split.json")).read()
    summary = train_classifier(tiles_dir, out, **kwargs)
    assert summary["epochs_this_session"] == 2  # epochs 3 and 4 only
    assert summary["epochs_run"] == 4  # the whole run, the resumed part included
    assert _epochs_logged(out) == [0, 1, 2, 3]
    assert open(os.path.join(out, "split.json")).read() == split_before
    assert not os.path.exists(os.path.join(out, "backup"))  # removed after a finished run


@pytest.mark.slow
def test_evaluate_on_other_folder_and_class_mismatch(tiles_dir, tmp_path):
    out = str(tmp_path / "run")
    train_classifier(tiles_dir, out, image_size=(24, 24), epochs=1, logdir=None, model_kwargs=TINY)
    other = str(tmp_path / "kaggle")
    make_class_folders(other, layout="kaggle", per_class=3, seed=5)
    report_path = str(tmp_path / "r.json")
    result = evaluate(out, other, report=report_path)
    assert result["subset"] == "all" and result["n"] == 9
    assert os.path.exists(str(tmp_path / "r_confusion.png"))
    assert evaluate(out, tiles_dir)["subset"] == "test"
    wrong = str(tmp_path / "wrong")
    make_class_folders(wrong, classes=("bus", "palm", "stair"), per_class=2)
    with pytest.raises(DatasetError, match="palm"):
        evaluate(out, wrong)


@pytest.mark.slow
def test_chars_task_trains_a_grayscale_resnet18(tmp_path):
    data = str(tmp_path / "glyphs")
    make_class_folders(data, classes=("a", "b", "c"), per_class=8, sizes=(30,), modes=("L",))
    out = str(tmp_path / "chars")
    summary = train_classifier(data, out, task="chars", epochs=1, logdir=None, model_kwargs={"width": 8})
    model = load_model(out)
    assert model.input_shape[-1] == 1  # grayscale by default for chars
    net = model.get_layer("resnet18")
    assert net.input_shape[1:] == (52, 32, 1)
    assert summary["test"]["n"] == 3
    rgb = os.path.join(data, "a", "0000.png")
    assert predict(model, [rgb])[0]["label"] in ("a", "b", "c")


def _imbalanced_tiles(root):
    """3 classes with 20, 20 and 8 tiles."""
    make_class_folders(root, per_class=20)
    for name in sorted(os.listdir(os.path.join(root, "traffic_light")))[8:]:
        os.remove(os.path.join(root, "traffic_light", name))
    return root


def test_tiles_default_balances_small_classes_of_the_training_split_into_the_run(tmp_path):
    """By default a tiles run oversamples the classes below min(500, largest class), training split only."""
    data = _imbalanced_tiles(str(tmp_path / "tiles"))
    out = str(tmp_path / "run")
    train_classifier(data, out, image_size=(24, 24), epochs=1, logdir=None, model_kwargs=TINY)
    from recaptcha_tf.data.splits import load_manifest

    split = {k: getattr(load_manifest(out), k) for k in ("train", "val", "test")}  # absolute paths
    train_counts = np.bincount([label for _, label in split["train"]], minlength=3)
    assert train_counts.tolist() == [14, 14, 14]  # 14, 14 and 6 training tiles before
    assert json.load(open(os.path.join(out, "config.json")))["balance_per_class"] == 14
    balanced = os.path.join(out, "balanced_images")
    assert all(os.path.abspath(p).startswith(balanced) for p, _ in split["train"])
    for subset in ("val", "test"):
        assert split[subset] and all(os.path.abspath(p).startswith(os.path.abspath(data)) for p, _ in split[subset])


@pytest.mark.parametrize("kwargs", [{"balance_per_class": 0}, {"class_weight": "balanced"}])
def test_tiles_balancing_is_off_with_zero_or_class_weights(tmp_path, kwargs):
    data = _imbalanced_tiles(str(tmp_path / "tiles"))
    out = str(tmp_path / "run")
    train_classifier(data, out, image_size=(24, 24), epochs=1, logdir=None, model_kwargs=TINY, **kwargs)
    split = json.load(open(os.path.join(out, "split.json")))
    assert np.bincount([label for _, label in split["train"]], minlength=3).tolist() == [14, 14, 6]
    assert not os.path.exists(os.path.join(out, "balanced_images"))
    assert json.load(open(os.path.join(out, "config.json")))["balance_per_class"] is None


def test_default_balancing_leaves_an_already_balanced_split_alone(tmp_path):
    """A split from a balanced manifest (e.g. written by `recaptcha-tf balance`) is not balanced again."""
    from recaptcha_tf.data.balance import balance_split
    from recaptcha_tf.data.folders import scan_class_folders
    from recaptcha_tf.data.splits import stratified_split

    data = _imbalanced_tiles(str(tmp_path / "tiles"))
    ds = scan_class_folders(data)
    split = stratified_split(ds.paths, ds.labels, ds.class_names, "70/15/15", seed=0, root=data)
    balanced = balance_split(split, str(tmp_path / "b"), per_class=10, seed=0, progress=False)
    assert balanced.counts()["train"] == [14, 14, 10]
    again = prepare_folder_split(data, str(tmp_path / "c"), str(tmp_path / "b" / "split.json"), balance_up_to=500)
    assert again.counts()["train"] == [14, 14, 10]
    assert not os.path.exists(str(tmp_path / "c" / "balanced_images"))
    fresh = prepare_folder_split(data, str(tmp_path / "d"), balance_up_to=500)
    assert fresh.counts()["train"] == [14, 14, 14]


def test_seconds_per_step_times_a_copy_of_the_model_and_leaves_the_model_untouched():
    import tensorflow as tf

    from recaptcha_tf.training.step_time import seconds_per_batch_read, seconds_per_step, steps_within

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inputs)))
    model = keras.Model(inputs, outputs)
    before = [w.copy() for w in model.get_weights()]
    x, y = np.random.default_rng(0).random((40, 8, 8, 1), "float32"), np.zeros((40, 3), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    seconds = seconds_per_step(model, "mse", dataset, steps=3, warm_up=1)
    assert 0 < seconds < 5
    assert getattr(model, "optimizer", None) is None and all(
        np.array_equal(a, b) for a, b in zip(before, model.get_weights())
    )
    with pytest.raises(ValueError, match="fewer than 2 batches"):
        seconds_per_step(model, "mse", dataset.take(1), steps=3, warm_up=1)
    weighted = tf.data.Dataset.from_tensor_slices((x, y, np.full(40, 3.0, "float32"))).batch(4)  # --class-weight
    assert 0 < seconds_per_step(model, "mse", weighted, steps=3, warm_up=1) < 5
    slow = dataset.map(lambda x, y: (tf.py_function(lambda a: time.sleep(0.05) or a, [x], tf.float32), y))
    assert 0.05 <= seconds_per_batch_read(slow, batches=2) < 1
    assert seconds_per_step(model, "mse", slow, steps=3, warm_up=1) < 0.05  # the step alone
    # 15 minutes: all 4,000 steps at 0.14 s (a bf16 CPU), 1,875 at 0.48 s (a CPU without); 0 minutes: no limit
    assert steps_within(4000, 0.14, 15) == 4000 and steps_within(4000, 0.48, 15) == 1875
    assert steps_within(4000, 0.48, 0) == steps_within(4000, 0.48, None) == 4000


def test_the_time_budget_is_the_given_minutes_or_the_task_default_and_never_negative():
    from recaptcha_tf.training.step_time import time_budget_minutes

    assert time_budget_minutes(None, 15) == 15 and time_budget_minutes(2.5, 15) == 2.5
    assert time_budget_minutes(0, 15) == 0  # no limit
    for bad in (-1, True, "10", float("nan")):
        with pytest.raises(ValueError, match="positive minutes"):
            time_budget_minutes(bad, 15)


def test_epochs_within_keeps_the_frozen_epochs_and_at_least_one_fine_tuning_epoch():
    from recaptcha_tf.training.step_time import epochs_within

    # 100 steps and 30 validation batches an epoch: 110 step-equivalents; 0.1 s frozen, 0.3 s trainable
    # 5 minutes = 300 s: one frozen epoch (11 s), then 8 of 33 s (264 s); the 9th would pass 300 s
    assert epochs_within(12, 1, 100, 30, 0.1, 0.3, 5) == 9
    assert epochs_within(6, 1, 100, 30, 0.1, 0.3, 5) == 6  # all that the recipe asks fit
    assert epochs_within(12, 2, 100, 30, 0.1, 0.3, 0.1) == 3  # too slow for any: still one fine-tuning epoch
    assert epochs_within(12, 1, 100, 30, 0.1, 0.3, 0) == epochs_within(12, 1, 100, 30, 0.1, 0.3, None) == 12
    # 0.03 s to produce each training batch: a frozen epoch takes 100 x 0.13 + 10 x 0.1 = 14 s, a full one
    # 100 x 0.33 + 10 x 0.3 = 36 s; 7 of those fit in the 286 s left
    assert epochs_within(12, 1, 100, 30, 0.1, 0.3, 5, read_seconds=0.03) == 8


def test_phase_one_running_longer_than_estimated_cuts_the_planned_epochs_and_never_adds_any():
    from recaptcha_tf.training.step_time import replanned_epochs

    # as above: a frozen epoch is estimated at 11 s, a full one at 33 s; 9 epochs fit 5 minutes
    args = (9, 1, 100, 30, 0.1, 0.3, 5, 0.0)
    assert replanned_epochs(*args, frozen_epoch_seconds=11.0) == 9  # as estimated
    assert replanned_epochs(*args, frozen_epoch_seconds=5.0) == 9  # faster: the plan stands
    # 11 s longer: 0.11 s a step more, so a full epoch takes 100 x 0.41 + 10 x 0.3 = 44 s, and 6 of them fit
    # the 278 s left after the 22 s frozen epoch
    assert replanned_epochs(*args, frozen_epoch_seconds=22.0) == 7
    assert replanned_epochs(*args, frozen_epoch_seconds=1000.0) == 2  # still one fine-tuning epoch


def test_a_stored_measurement_is_reused_only_for_the_same_settings(tmp_path):
    from recaptcha_tf.training.step_time import stored_measurement
    from recaptcha_tf.utils.run_folder import write_json

    assert stored_measurement(str(tmp_path), "step_seconds", model="crnn") is None  # no config.json yet
    write_json({"model": "crnn", "image_size": [48, 192], "step_seconds": 0.12}, str(tmp_path / "config.json"))
    assert stored_measurement(str(tmp_path), "step_seconds", model="crnn", image_size=(48, 192)) == 0.12
    assert stored_measurement(str(tmp_path), "step_seconds", model="crnn", image_size=(64, 256)) is None
    assert stored_measurement(str(tmp_path), "frozen_step_seconds", model="crnn") is None


def test_time_budget_stops_before_an_epoch_that_would_pass_it(caplog):
    import tensorflow as tf

    from recaptcha_tf.training.callbacks import TimeBudget

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse")
    x = tf.data.Dataset.from_tensor_slices((np.zeros((4, 4), "float32"), np.zeros((4, 1), "float32"))).batch(2)
    slow = x.map(lambda a, b: (tf.py_function(lambda t: time.sleep(0.1) or t, [a], tf.float32), b))
    slow = slow.map(lambda a, b: (tf.ensure_shape(a, (None, 4)), b))
    budget = TimeBudget(minutes=0.02)  # 1.2 s; an epoch takes at least 0.2 s
    with caplog.at_level("WARNING", logger="recaptcha_tf"):
        history = model.fit(slow, epochs=20, verbose=0, callbacks=[budget])
    epochs = len(history.history["loss"])
    assert budget.stopped and 1 <= epochs < 6 and "another would pass the time budget of 0.02 minutes" in caplog.text
    # what ran fits the budget with the longest epoch to spare
    assert epochs * 0.2 <= 1.2 + budget.longest
    # the last epoch ends the run anyway: no stop and no warning
    caplog.clear()
    last = TimeBudget(minutes=0.001)
    with caplog.at_level("WARNING", logger="recaptcha_tf"):
        model.fit(slow, epochs=1, verbose=0, callbacks=[last])
    assert not last.stopped and "time budget" not in caplog.text
