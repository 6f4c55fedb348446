import json
import os

import keras
import numpy as np
import pytest

from recaptcha_tf.data.generator import generate_captchas
from recaptcha_tf.data.text.vocabulary import OutOfVocabularyError
from recaptcha_tf.evaluation.workflow import evaluate
from recaptcha_tf.inference.decoding import ctc_beam_search_decode, ctc_greedy_decode, multihead_decode, softmax
from recaptcha_tf.inference.loading import load_model, model_info
from recaptcha_tf.inference.predictor import predict
from recaptcha_tf.training.text import train_text

CHARS = "abc"


def _onehot_frames(indices, classes=4, p=0.9):
    probs = np.full((len(indices), classes), (1 - p) / (classes - 1))
    probs[np.arange(len(indices)), indices] = p
    return probs


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    # frames: a a _ a b b _ c   (index 0 is blank) -> "aabc"
    probs = _onehot_frames([1, 1, 0, 1, 2, 2, 0, 3])[None]
    probs[0, 1, 1] = 0.95  # the second frame of the first 'a' run is the most confident
    ((text, conf),) = ctc_greedy_decode(probs, CHARS)
    assert text == "aabc"
    assert conf == pytest.approx([0.95, 0.9, 0.9, 0.9])


def test_ctc_beam_search_sums_paths_where_greedy_does_not():
    # Two frames, P(blank)=0.6, P(a)=0.4 in each: greedy picks "" (0.36) but
    # P("a") = 0.4*0.4 + 0.4*0.6 + 0.6*0.4 = 0.64, which beam search finds.
    probs = np.array([[[0.6, 0.4], [0.6, 0.4]]])
    logits = np.log(probs)
    assert ctc_greedy_decode(probs, "a")[0][0] == ""
    ((text, prob),) = ctc_beam_search_decode(logits, "a", beam_width=4)
    assert text == "a" and prob == pytest.approx(0.64, abs=1e-4)


def test_beam_and_greedy_agree_on_peaked_logits():
    probs = _onehot_frames([2, 0, 3, 3, 0, 1], p=0.97)[None]
    assert ctc_beam_search_decode(np.log(probs), CHARS)[0][0] == ctc_greedy_decode(probs, CHARS)[0][0] == "bca"


def test_multihead_decode_stops_at_end_symbol():
    probs = _onehot_frames([3, 1, 0, 2])[None]
    ((text, conf),) = multihead_decode(probs, CHARS)
    assert text == "ca" and np.prod(conf) == pytest.approx(0.9 * 0.9 * 0.9)  # the end's 0.9 counts too
    assert conf == pytest.approx([0.9 * 0.9**0.5] * 2)
    unsure_end = _onehot_frames([3, 1, 0, 2])[None]
    unsure_end[0, 2] = [0.4, 0.35, 0.25, 0.0]  # the text may go on: "ca" ends with probability 0.4 only
    ((text, conf),) = multihead_decode(unsure_end, CHARS)
    assert text == "ca" and np.prod(conf) == pytest.approx(0.9 * 0.9 * 0.4)
    ((text, conf),) = multihead_decode(_onehot_frames([3, 1, 2])[None], CHARS)  # no end: all positions read
    assert text == "cab" and conf == pytest.approx([0.9, 0.9, 0.9])


def test_softmax_rows_sum_to_one():
    s = softmax(np.array([[1.0, 2.0, 3.0]]))
    assert s.sum() == pytest.approx(1.0) and s.argmax() == 2


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("text") / "captchas")
    generate_captchas(root, count=40, length=(3, 4), charset=CHARS, size=(96, 32), seed=0)
    return root


@pytest.mark.parametrize("model", ["crnn", "multihead"])
@pytest.mark.slow
def test_text_train_save_load_predict_round_trip(tiny_text, tmp_path, model):
    out = str(tmp_path / model)
    summary = train_text(
        tiny_text,
        out,
        model=model,
        charset=CHARS,
        image_size=(32, 64),
        epochs=2,
        batch_size=16,
        logdir=str(tmp_path / "logs"),
        model_kwargs={"rnn_units": 16, "filters": [8, 8, 16, 16]},
    )
    assert summary["epochs_run"] == 2 and summary["test"]["n"] == 6
    report = json.load(open(os.path.join(out, "test_report.json")))
    assert {"n", "exact_match", "cer", "worst"} <= set(report) and 0 <= report["cer"]
    assert os.path.exists(os.path.join(out, "test_predictions.png"))
    loaded = load_model(out)
    info = model_info(loaded)
    assert info.names == list(CHARS) and info.kind == ("ctc" if model == "crnn" else "multihead")
    files = sorted(os.listdir(tiny_text))[:3]
    results = predict(loaded, [os.path.join(tiny_text, f) for f in files])
    for r in results:
        assert set(r["text"]) <= set(CHARS)
        assert len(r["confidence"]) == len(r["text"])
        assert all(0 <= c <= 1 for c in r["confidence"])


def _plain_text_set(root, count=160, seed=0):
    """Clean two-letter words ('ab', 'ba', ...) in a real font with jitter: CTC learns them in seconds."""
    from PIL import Image, ImageDraw, ImageFont

    from recaptcha_tf.data.generator import default_fonts

    font = ImageFont.truetype(default_fonts()[0], 22)
    rng = np.random.default_rng(seed)
    os.makedirs(root)
    for i in range(count):
        label = "".join(rng.choice(list("ab"), size=2))
        im = Image.new("L", (64, 32), 255)
        ImageDraw.Draw(im).text((4 + int(rng.integers(0, 20)), int(rng.integers(0, 6))), label, font=font, fill=0)
        im.save(os.path.join(root, f"{label}-{i}.png"))


@pytest.mark.slow
def test_text_learns_when_trained_longer(tmp_path):
    data = str(tmp_path / "d")
    _plain_text_set(data, count=400)
    summary = train_text(
        data,
        str(tmp_path / "run"),
        charset="ab",
        image_size=(32, 64),
        epochs=12,
        batch_size=8,
        learning_rate=3e-3,
        logdir=None,
        patience=0,
        augment=False,
        model_kwargs={"rnn_units": 32, "filters": [16, 16, 32, 32], "dropout": 0.0},
    )
    # Held-out words: this fails if inference-mode BatchNorm statistics lag training.
    assert summary["test"]["cer"] < 0.1
    assert summary["test"]["exact_match"] > 0.8


def test_label_outside_the_charset_is_a_clear_error(tiny_text, tmp_path):
    with pytest.raises(OutOfVocabularyError) as err:
        train_text(tiny_text, str(tmp_path / "r"), charset="ab", epochs=1, logdir=None)
    assert "'c'" in str(err.value) and ".png" in str(err.value)


class _Steps(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.steps = self.params["steps"]


@pytest.mark.slow
def test_separate_validation_set_joins_the_split_val_part_to_training(tiny_text, tmp_path):
    val = str(tmp_path / "val")
    generate_captchas(val, count=10, length=3, charset=CHARS, size=(96, 32), seed=7)
    steps = _Steps()
    kwargs = dict(
        charset=CHARS,
        image_size=(32, 64),
        epochs=1,
        batch_size=8,
        logdir=None,
        model_kwargs={"rnn_units": 8, "filters": [8, 8, 8, 8]},
    )
    summary = train_text(tiny_text, str(tmp_path / "run"), val_data=val, callbacks=[steps], **kwargs)
    assert steps.steps == 5  # 40 images - 6 test = 34 training images (the split's 6 val included), batches of 8
    assert summary["test"]["n"] == 6
    split = json.load(open(tmp_path / "run" / "split.json"))  # no image trained on is listed as a val image
    assert len(split["train"]) == 34 and split["val"] == [] and len(split["test"]) == 6
    bad = str(tmp_path / "bad")
    generate_captchas(bad, count=2, length=3, charset="xyz", size=(96, 32), seed=1)
    with pytest.raises(OutOfVocabularyError, match=r"\.png: label '[xyz]+' has character\(s\)"):
        train_text(tiny_text, str(tmp_path / "run2"), val_data=bad, **kwargs)


@pytest.mark.slow
def test_train_and_evaluate_from_parquet(tmp_path):
    parquet = str(tmp_path / "set.parquet")
    generate_captchas(parquet, count=30, length=3, charset=CHARS, size=(96, 32), seed=4, format="parquet")
    out = str(tmp_path / "run")
    train_text(
        parquet,
        out,
        charset=CHARS,
        image_size=(32, 64),
        epochs=1,
        batch_size=16,
        logdir=None,
        label_pattern=r"(?P<label>.+)",
        model_kwargs={"rnn_units": 8, "filters": [8, 8, 8, 8]},
    )
    result = evaluate(out, parquet, report=str(tmp_path / "r.json"))
    held_out = [name for name, _ in json.load(open(os.path.join(out, "split.json")))["test"]]
    assert all(name.startswith("parquet:") for name in held_out)
    assert result["subset"] == "test" and result["n"] == len(held_out) == 4  # round(0.15 * 30) == 4
    everything = evaluate(out, parquet, subset="all")
    assert everything["n"] == 30 and 0 <= everything["cer"]


@pytest.mark.slow
def test_text_model_starts_from_another_runs_backbone_frozen_or_not(tmp_path):
    """Synthetic pretraining -> real fine-tuning: --weights takes a trained .keras text model."""
    from recaptcha_tf.models.finetune import find_backbone

    data = str(tmp_path / "synth")
    generate_captchas(data, count=40, length=(4, 4), charset="abc", size=(96, 32), seed=1)
    kwargs = dict(
        model="crnn",
        image_size=(32, 96),
        batch_size=8,
        logdir=None,
        charset="abc",
        patience=0,
        model_kwargs=dict(filters=[8, 8, 16, 16], rnn_units=16, rnn_layers=1),
    )
    first = str(tmp_path / "first")
    train_text(data, first, epochs=1, **kwargs)
    source = find_backbone(load_model(first))
    out = str(tmp_path / "second")
    summary = train_text(data, out, epochs=2, weights=os.path.join(first, "model.keras"), freeze_epochs=1, **kwargs)
    assert summary["epochs_run"] == 2 and os.path.exists(os.path.join(out, "phase1.weights.h5"))
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["freeze_epochs"] == 1
    # Phase 1 kept the loaded backbone as it was: its saved weights equal the source's.
    from recaptcha_tf.models import build_text_model

    net = build_text_model("crnn", "abc", (32, 96), max_length=4, **kwargs["model_kwargs"])
    net.load_weights(os.path.join(out, "phase1.weights.h5"))
    for a, b in zip(find_backbone(net).weights, source.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    # Without --freeze-epochs a text run fine-tunes everything from the start at the full learning rate: the
    # pretrained model is a text model, not an ImageNet backbone
    whole = str(tmp_path / "whole")
    train_text(data, whole, epochs=1, weights=os.path.join(first, "model.keras"), **kwargs)
    config = json.load(open(os.path.join(whole, "config.json")))
    assert config["freeze_epochs"] == 0 and config["fine_tune_learning_rate"] == config["learning_rate"] == 1e-3
    assert not os.path.exists(os.path.join(whole, "phase1.weights.h5"))


def test_mobilenet_text_trunk_starts_from_a_whole_mobilenetv2_weights_file(tmp_path):
    """crnn_mobilenetv2 takes the ImageNet file of the whole MobileNetV2 (no top) and keeps its first blocks."""
    from recaptcha_tf.models import build_model
    from recaptcha_tf.models.finetune import find_backbone
    from recaptcha_tf.models.registry import BN_MOMENTUM

    whole = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False, weights=None)
    for w in whole.weights:  # not the initialiser's values, so a copy cannot match by chance
        w.assign(np.random.default_rng(0).normal(size=w.shape).astype("float32"))
    path = str(tmp_path / "mobilenetv2_0.35_notop.weights.h5")
    whole.save_weights(path)
    net = build_model("crnn_mobilenetv2", (32, 96, 1), 5, weights=path)
    trunk = find_backbone(net)
    assert trunk.output_shape == (None, 4, 12, 96)  # stride 8: block_6's expanded input
    for name in ("Conv1", "block_1_depthwise", "block_5_project_BN", "block_6_expand"):
        for a, b in zip(trunk.get_layer(name).weights, whole.get_layer(name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    momenta = {layer.momentum for layer in trunk.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {BN_MOMENTUM}
    with pytest.raises(ValueError, match="stride must be one of"):
        build_model("crnn_mobilenetv2", (32, 96, 1), 5, stride=32)


@pytest.mark.slow
def test_mobilenet_text_model_trains_in_float32_saves_and_reads_in_safe_mode(tmp_path, monkeypatch):
    """Its registry entry says bfloat16 is slower for its depthwise convolutions on a CPU: the text trainer
    follows that as the classifier trainer does (on a bfloat16 CPU it trained 0.45 s a step instead of 0.27)."""
    from recaptcha_tf.models import precision as precision

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)  # as on a CPU with AVX512-BF16 or AMX
    assert precision.resolve_precision("auto") != precision.resolve_precision("auto", cpu_bfloat16=False)
    data = str(tmp_path / "synth")
    generate_captchas(data, count=30, length=(3, 3), charset="abc", size=(96, 32), seed=2)
    out = str(tmp_path / "run")
    summary = train_text(
        data,
        out,
        model="crnn_mobilenetv2",
        weights="none",
        charset="abc",
        image_size=(32, 96),
        epochs=1,
        batch_size=8,
        logdir=None,
        model_kwargs={"rnn_units": 16, "rnn_layers": 1},
    )
    assert summary["epochs_run"] == 1
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["precision"] == precision.resolve_precision("auto", cpu_bfloat16=False)
    loaded = load_model(out)
    assert model_info(loaded).kind == "ctc" and loaded.output_shape[1] == 12
    image = os.path.join(data, sorted(os.listdir(data))[0])
    (result,) = predict(loaded, [image])
    assert set(result["text"]) <= set("abc") and len(result["confidence"]) == len(result["text"])
    # the trained model is a starting point for another run (--weights RUN/model.keras): its trunk loads
    from recaptcha_tf.models import build_model
    from recaptcha_tf.models.finetune import find_backbone

    again = build_model("crnn_mobilenetv2", (32, 96, 1), 4, weights=os.path.join(out, "model.keras"))
    for a, b in zip(find_backbone(again).weights, find_backbone(loaded).weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


class _LearningRates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_begin(self, batch, logs=None):
        self.values.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def test_curriculum_dataset_draws_the_first_steps_from_the_first_set_and_resumes_in_order():
    import tensorflow as tf

    from recaptcha_tf.data.pipeline import curriculum_dataset

    stages = [tf.data.Dataset.from_tensors(k).repeat() for k in range(3)]
    assert [int(v) for v in curriculum_dataset(stages, [2, 3]).take(6)] == [0, 0, 1, 2, 2, 2]
    assert [int(v) for v in curriculum_dataset(stages, [2, 3], start_step=1).take(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="3 stages need 2 boundaries"):
        curriculum_dataset(stages, [2])


def test_warm_up_covers_a_fraction_of_an_epoch_when_asked():
    from recaptcha_tf.training.callbacks import cosine_schedule

    schedule = cosine_schedule(1e-3, epochs=20, steps_per_epoch=10, warmup_epochs=3.5)
    assert float(schedule(0)) == 0.0 and float(schedule(35)) == pytest.approx(1e-3)
    assert float(schedule(17)) == pytest.approx(1e-3 * 17 / 35, rel=1e-5)


@pytest.mark.slow
def test_text_curriculum_and_warm_up_fraction_shape_the_run(tiny_text, tmp_path, caplog):
    from recaptcha_tf.training.phases import TrainingConfigError

    kwargs = dict(charset=CHARS, image_size=(32, 64), batch_size=8, logdir=None)
    kwargs["model_kwargs"] = {"rnn_units": 8, "filters": [4, 4, 8, 8]}
    out, rates = str(tmp_path / "run"), _LearningRates()
    with caplog.at_level("INFO", logger="recaptcha_tf"):
        summary = train_text(
            tiny_text, out, steps=40, curriculum=0.5, warmup_fraction=0.25, callbacks=[rates], patience=0, **kwargs
        )
    assert summary["steps"] == 40
    # 20 evaluations of 2 steps: a quarter of them, 10 steps, of linear warm-up to the peak 1e-3
    assert rates.values[0] == 0.0 and rates.values[5] == pytest.approx(5e-4, rel=1e-3)
    assert rates.values[10] == pytest.approx(1e-3, rel=1e-3)
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["curriculum"] == 0.5 and config["warmup_fraction"] == 0.25
    # labels of 3-4 characters: 20 steps on those of 3, then every image
    assert "--curriculum: the first 20 steps train on labels of at most 3 characters in turn (20 steps each)" in (
        caplog.text
    )
    with pytest.raises(TrainingConfigError, match="--curriculum"):
        train_text(tiny_text, str(tmp_path / "epochs"), epochs=1, curriculum=0.5, **kwargs)


class _Model:
    stop_training = False


def test_plateau_extension_holds_and_adds_the_blank_evaluations_after_the_warm_up_up_to_its_cap():
    from recaptcha_tf.training.plateau import PlateauExtension

    blanks = [1.0, 1.0, 0.95, 1.0, 0.2, 0.1, 0.1, 0.1]  # the first is the warm-up's; the cap is 2
    extension = PlateauExtension(planned_epochs=4, extra_epochs=2, steps_per_epoch=10, warmup_epochs=1)
    schedule = extension.learning_rate_schedule(1e-3, epochs=6)
    extension.set_model(_Model())
    stopped_after = None
    for epoch, blank in enumerate(blanks):
        extension.on_epoch_end(epoch, {"val_blank_fraction": blank})
        if extension.model.stop_training:
            stopped_after = epoch + 1
            break
    assert extension.held_epochs == 2 and stopped_after == 6  # 4 planned evaluations off the plateau, 2 held
    assert float(keras.ops.convert_to_numpy(schedule.held)) == 20.0
    # a resumed run counts the same evaluations from its history, and its schedule starts held back
    history = [{"epoch": str(e), "val_blank_fraction": str(b)} for e, b in enumerate(blanks[:4])]
    resumed = PlateauExtension(4, 2, 10, 1, history=history)
    assert resumed.held_epochs == 2
    assert float(keras.ops.convert_to_numpy(resumed.learning_rate_schedule(1e-3, 6).held)) == 20.0


def test_a_resumed_plateau_extension_counts_the_history_as_the_backup_repaired_it(tmp_path):
    """Killed after the backup of epoch 3 but before its ``history.csv`` row: the plan is made from 3 rows, but
    training resumes after epoch 4 once the backup has added its row back, so the held count is read again."""
    import csv

    from recaptcha_tf.training.plateau import PlateauExtension

    blanks = [1.0, 1.0, 0.95, 1.0]  # evaluations 2-4 sit on the plateau after the warm-up; the cap is 3
    rows = [{"epoch": str(e), "val_blank_fraction": str(b)} for e, b in enumerate(blanks)]
    path = str(tmp_path / "history.csv")

    def write(history_rows):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", "val_blank_fraction"])
            writer.writeheader()
            writer.writerows(history_rows)

    write(rows[:3])  # the file before the repair: the kill cut off the last row
    resumed = PlateauExtension(4, 3, 10, 1, history_path=path)
    schedule = resumed.learning_rate_schedule(1e-3, 7)
    assert resumed.held_epochs == 2
    write(rows)  # as SafeBackupAndRestore leaves it: the backed-up epoch's row is back
    resumed.on_train_begin()
    assert resumed.held_epochs == 3
    assert float(keras.ops.convert_to_numpy(schedule.held)) == 30.0


def test_held_schedule_reads_its_schedule_held_back_and_round_trips_through_keras_serialization():
    from recaptcha_tf.training.callbacks import cosine_schedule
    from recaptcha_tf.training.plateau import HeldSchedule

    base = cosine_schedule(1e-3, epochs=4, steps_per_epoch=10, warmup_epochs=1)
    held = HeldSchedule(base, held_steps=10)
    assert float(held(25)) == pytest.approx(float(base(15))) and float(held(5)) == 0.0
    copy = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(held))
    assert isinstance(copy, HeldSchedule) and float(copy(25)) == pytest.approx(float(base(15)))


@pytest.mark.slow
def test_text_plateau_extension_adds_the_blank_evaluations_to_a_run_and_records_them(tiny_text, tmp_path):
    import csv

    from recaptcha_tf.training.phases import TrainingConfigError

    kwargs = dict(charset=CHARS, image_size=(32, 64), batch_size=8, logdir=None, patience=0)
    kwargs["model_kwargs"] = {"rnn_units": 8, "filters": [4, 4, 8, 8]}
    out = str(tmp_path / "run")
    summary = train_text(tiny_text, out, steps=20, plateau_extension=0.5, **kwargs)
    with open(os.path.join(out, "history.csv"), newline="") as f:
        blanks = [float(row["val_blank_fraction"]) for row in csv.DictReader(f)]
    # 20 evaluations of 1 step; after the first (the warm-up), each still reading >= 90% blanks adds one, up to 10
    held = min(10, sum(b >= 0.9 for b in blanks[1:]))
    assert held >= 1 and summary["epochs_run"] == 20 + held == len(blanks) and summary["steps"] == 20 + held
    assert json.load(open(os.path.join(out, "config.json")))["plateau_extension"] == 0.5
    with pytest.raises(TrainingConfigError, match="--plateau-extension"):
        train_text(tiny_text, str(tmp_path / "epochs"), epochs=2, plateau_extension=0.5, **kwargs)


def test_a_resumed_curriculum_goes_on_from_the_backup_not_from_an_unrepaired_history(tiny_text, tmp_path, caplog):
    """Killed after the backup of evaluation 3 but before its ``history.csv`` row: the curriculum must go on from
    the 6 steps the backup holds (what training resumes after), not from the 4 the history shows before the repair."""
    from test_training import Interrupt

    kwargs = dict(charset=CHARS, image_size=(32, 64), batch_size=8, logdir=None, steps=40, curriculum=0.5)
    kwargs.update(model_kwargs={"rnn_units": 8, "filters": [4, 4, 8, 8]}, patience=0)
    out = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        train_text(tiny_text, out, callbacks=[Interrupt(after=3)], **kwargs)
    history = os.path.join(out, "history.csv")
    lines = open(history).read().splitlines(keepends=True)
    open(history, "w").write("".join(lines[:-1]))  # the kill fell before the CSV row of evaluation 3
    with caplog.at_level("INFO", logger="recaptcha_tf"):
        summary = train_text(tiny_text, out, **kwargs)
    assert "at most 3 characters in turn (20 steps each) (6 done)" in caplog.text
    assert summary["steps"] == 40
