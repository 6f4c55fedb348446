"""Hyperparameter search: spaces, grid enumeration, HParams events, resume, every task, distributed workers."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys

import keras
import keras_tuner as kt
import pytest
from conftest import make_class_folders

from recaptcha_tf.cli.main import main
from recaptcha_tf.tuning import TuningError, builtin_space, grid_size, load_search_space
from recaptcha_tf.tuning.spaces import model_kwargs, resolve_objective

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes

TINY_CNN = {"conv_layers": 1, "filters": 4, "dense_layers": 0}
TINY = dict(epochs=1, image_size=(16, 16), batch_size=8, precision="float32", model_kwargs=TINY_CNN, augment=False)


# ---------------------------------------------------------------- spaces


def test_builtin_spaces_are_the_issue_lists_and_adapt_to_the_task():
    opt = load_search_space("optimizers", "tiles")
    assert opt["optimizer"] == ["adam", "rmsprop", "sgd+momentum", "nadam", "adamw"]
    assert opt["loss"] == ["sparse_categorical_crossentropy", "label_smoothed_crossentropy", "focal"]
    assert opt["activation"] == ["relu", "leaky_relu", "elu", "gelu"]
    assert grid_size(opt) == 5 * 3 * 4 * len(opt["learning_rate"])
    arch = load_search_space("architecture", "chars")
    assert set(arch) == {"c2d_layers", "c2d_filters", "dense_layers", "dense_neurons", "dropout"}
    # CTC text models have one loss and no activation knob: the built-in space keeps what fits
    text = builtin_space("optimizers", "text", "crnn")
    assert set(text) == {"optimizer", "learning_rate"}
    assert "activation" not in builtin_space("optimizers", "chars", "resnet18")


def test_yaml_and_json_spaces_parse_to_the_same_lists(tmp_path):
    yaml_path = tmp_path / "space.yaml"
    yaml_path.write_text(
        "optimizer: [adam, nadam]\nloss:\n  - focal\n  - crossentropy\nlearning_rate: [0.001, 1e-2]\n"
        "dropout: [0, 0.3]\nc2d_layers: 3\n"
    )
    json_path = tmp_path / "space.json"
    json_path.write_text(
        json.dumps(
            {
                "optimizer": ["adam", "nadam"],
                "loss": ["focal", "crossentropy"],
                "learning_rate": [0.001, 0.01],
                "dropout": [0, 0.3],
                "c2d_layers": [3],
            }
        )
    )
    expected = {
        "optimizer": ["adam", "nadam"],
        "loss": ["focal", "sparse_categorical_crossentropy"],
        "learning_rate": [0.001, 0.01],
        "dropout": [0.0, 0.3],
        "c2d_layers": [3],
    }
    assert load_search_space(str(yaml_path), "tiles") == expected
    assert load_search_space(str(json_path), "tiles") == expected
    assert load_search_space(expected, "tiles") == expected  # the same dict in a notebook
    assert all(isinstance(v, float) for v in expected["dropout"])
    assert grid_size(expected) == 2 * 2 * 2 * 2 * 1


@pytest.mark.parametrize(
    "space, task, message",
    [
        ({"loss": ["focal"]}, "text", "does not fit task 'text'"),
        ({"loss": ["ctc"]}, "tiles", "does not fit task 'tiles'"),
        ({"activation": ["relu"]}, "text", "Unknown hyperparameter 'activation'"),
        ({"optimiser": ["adam"]}, "tiles", "Unknown hyperparameter 'optimiser'"),
        ({"optimizer": []}, "tiles", "empty"),
        ({"optimizer": ["adam", "adam"]}, "tiles", "repeated"),
        ({"optimizer": ["adagrad"]}, "tiles", "unknown 'adagrad'"),
        ({"learning_rate": [0.01, -1]}, "tiles", "must be positive"),
        ({"learning_rate": ["fast"]}, "tiles", "not a number"),
        ({"dropout": [1.0]}, "tiles", "below 1"),
        ({"c2d_layers": [2.5]}, "tiles", "whole number"),
        ({"c2d_filters": [[16, 32]]}, "tiles", "not a number"),
        ({"stem_stride": [[1, 2]]}, "tiles", "scalar values only"),
        ({"c2d_layers": [7]}, "text", "below one row"),
        ([["adam"]], "tiles", "non-empty mapping"),
        ({}, "tiles", "non-empty mapping"),
    ],
)
def test_bad_spaces_are_rejected_with_a_clear_message(space, task, message):
    with pytest.raises(TuningError, match=message):
        load_search_space(space, task, image_size=(48, 192))


def test_bad_space_files_and_objectives(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optimizer: [adam\n")
    with pytest.raises(TuningError, match="Cannot parse"):
        load_search_space(str(bad), "tiles")
    with pytest.raises(TuningError, match="does not exist"):
        load_search_space(str(tmp_path / "missing.yaml"), "tiles")
    assert resolve_objective(None, "tiles") == ("val_macro_f1", "max")
    assert resolve_objective("accuracy", "chars") == ("val_accuracy", "max")
    assert resolve_objective(None, "text") == ("val_cer", "min")
    with pytest.raises(TuningError, match="does not fit task 'text'"):
        resolve_objective("macro_f1", "text")


def test_architecture_names_map_onto_each_builder():
    values = {
        "c2d_layers": 3,
        "c2d_filters": 16,
        "dense_layers": 2,
        "dense_neurons": 64,
        "dropout": 0.3,
        "optimizer": "adam",
    }
    assert model_kwargs("cnn", values) == {
        "conv_layers": 3,
        "filters": 16,
        "dense_layers": 2,
        "dense_units": 64,
        "dropout": 0.3,
    }
    crnn = model_kwargs("crnn", values)
    assert crnn == {
        "filters": [16, 32, 64],
        "width_pooling": [2, 2, 1],
        "rnn_layers": 2,
        "rnn_units": 64,
        "dropout": 0.3,
    }


# ---------------------------------------------------------------- grid oracle


def _grid_oracle(directory):
    from recaptcha_tf.tuning.tuners import ResumableGridSearchOracle

    oracle = ResumableGridSearchOracle(objective=kt.Objective("score", "max"))
    oracle._set_project_dir(str(directory), "grid")
    return oracle


def _space():
    hps = kt.HyperParameters()
    hps.Choice("optimizer", ["adam", "sgd", "nadam"])
    hps.Choice("dropout", [0.1, 0.2])
    hps.Choice("activation", ["relu", "gelu"])
    return hps


def _run(oracle, n=None):
    done = []
    while n is None or len(done) < n:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        oracle.update_trial(trial.trial_id, {"score": float(len(done))})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.save()  # as BaseTuner.on_trial_end does
        done.append(tuple(sorted(trial.hyperparameters.values.items())))
    return done


def test_grid_runs_the_exact_product_once_and_resumes_without_repeats(tmp_path):
    product = {
        tuple(sorted(zip(["activation", "dropout", "optimizer"], c)))
        for c in itertools.product(["relu", "gelu"], [0.1, 0.2], ["adam", "sgd", "nadam"])
    }
    oracle = _grid_oracle(tmp_path / "full")
    oracle.update_space(_space())
    full = _run(oracle)
    assert len(full) == 12 and set(full) == product

    first = _grid_oracle(tmp_path / "resumed")
    first.update_space(_space())
    part1 = _run(first, n=5)
    reloaded = _grid_oracle(tmp_path / "resumed")
    reloaded.reload()  # a new process: keras-tuner's own GridSearchOracle stops here with 5 of 12
    part2 = _run(reloaded)
    assert len(part1) == 5 and len(part2) == 7
    assert not set(part1) & set(part2) and set(part1) | set(part2) == product


# ---------------------------------------------------------------- HParams events


def read_trials(logdir):
    """Per trial folder: HParams session values and the final metric scalars, read back from the event files."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    out = {}
    for run in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, run)
        if not os.path.isdir(path):
            continue
        acc = ea.EventAccumulator(path, size_guidance={ea.TENSORS: 0})
        acc.Reload()
        content = acc.PluginTagToContent("hparams")
        starts = [
            plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info
            for tag, c in content.items()
            if tag == "_hparams_/session_start_info"
        ]
        assert len(starts) == 1, f"{run}: {len(starts)} session starts"
        hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in starts[0].hparams.items()}
        metrics = {
            tag: float(tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto))
            for tag in acc.Tags()["tensors"]
            if not tag.startswith("_hparams_")
        }
        scalars = {}
        for sub in ("train", "validation"):
            sub_acc = ea.EventAccumulator(os.path.join(path, sub), size_guidance={ea.TENSORS: 0})
            sub_acc.Reload()
            scalars[sub] = set(sub_acc.Tags()["tensors"])
        out[run] = {"hparams": hparams, "metrics": metrics, "scalars": scalars, "group": starts[0].group_name}
    return out


def read_experiment(logdir):
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = ea.EventAccumulator(logdir)
    acc.Reload()
    exp = plugin_data_pb2.HParamsPluginData.FromString(acc.PluginTagToContent("hparams")["_hparams_/experiment"])
    return ({h.name for h in exp.experiment.hparam_infos}, {m.name.tag for m in exp.experiment.metric_infos})


class StopAtTrainingRun(keras.callbacks.Callback):
    """Simulates Ctrl-C when the n-th trial starts training (counts across keras-tuner's deep copies)."""

    started = 0

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_train_begin(self, logs=None):
        type(self).started += 1
        if type(self).started == self.n:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tune") / "tiles")
    make_class_folders(root, per_class=8)
    return root


def test_tiles_grid_hparams_resume_results_and_best_model(tiles, tmp_path, monkeypatch, capsys):
    from recaptcha_tf.tuning import search
    from recaptcha_tf.tuning.hypermodel import CaptchaHyperModel

    trained = []
    fit = CaptchaHyperModel.fit

    def recording_fit(self, hp, model, *args, **kwargs):
        trained.append((hp.values["optimizer"], hp.values.get("loss")))
        return fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(CaptchaHyperModel, "fit", recording_fit)
    space = {"optimizer": ["adam", "sgd+momentum"], "loss": ["focal", "label_smoothed_crossentropy"]}
    product = set(itertools.product(space["optimizer"], space["loss"]))
    logdir, out = str(tmp_path / "logs"), str(tmp_path / "out")
    args = dict(task="tiles", space=space, tuner="grid", logdir=logdir, name="opt-grid", out=out, **TINY)

    with pytest.raises(KeyboardInterrupt):  # stopped while the third trial trains
        search.run_search(tiles, callbacks=[StopAtTrainingRun(3)], **args)
    first = list(trained)
    assert len(first) == 3 and len(set(first)) == 3
    trained.clear()
    summary = search.run_search(tiles, **args)  # the same call resumes
    # the interrupted trial is retried, the two finished ones are not repeated
    assert first[2] in trained and not set(first[:2]) & set(trained) and len(trained) == 2
    assert set(first[:2]) | set(trained) == product
    assert summary["trials"] == summary["completed"] == 4 == summary["grid_size"]

    # HParams: the experiment at the root, one session per trial with its values and final metrics
    names, metric_tags = read_experiment(os.path.join(logdir, "opt-grid"))
    assert names == {"optimizer", "loss"}
    assert {"val_macro_f1", "val_accuracy", "val_loss", "seconds"} <= metric_tags
    trials = read_trials(os.path.join(logdir, "opt-grid"))
    assert len(trials) == 4
    assert {(t["hparams"]["optimizer"], t["hparams"]["loss"]) for t in trials.values()} == product
    for run, t in trials.items():
        assert {"val_macro_f1", "val_accuracy", "val_loss", "epochs", "seconds"} <= set(t["metrics"]), run
        assert 0 <= t["metrics"]["val_macro_f1"] <= 1 and t["metrics"]["epochs"] == 1
        assert "epoch_loss" in t["scalars"]["train"] and "epoch_macro_f1" in t["scalars"]["validation"]

    # results: sorted by the objective, CSV + Markdown + plot
    import csv

    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    scores = [float(r["val_macro_f1"]) for r in rows]
    assert len(rows) == 4 and scores == sorted(scores, reverse=True)
    assert summary["best"]["val_macro_f1"] == pytest.approx(scores[0])
    assert open(os.path.join(out, "results.md")).read().count("\n| ") == 5
    assert os.path.getsize(os.path.join(out, "results.png")) > 5000
    by_trial = {f"trial_{r['trial']}": float(r["val_macro_f1"]) for r in rows}
    assert {k: t["metrics"]["val_macro_f1"] for k, t in trials.items()} == pytest.approx(by_trial)

    # the best model is a normal run folder for evaluate and predict
    capsys.readouterr()
    assert main(["evaluate", "--model", out, "--data", tiles]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["subset"] == "test" and report["n"] == summary["test"]["n"] > 0
    image = os.path.join(tiles, "bus", "0000.png")
    assert main(["predict", "--model", out, image, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["label"] in ("bus", "hydrant", "traffic_light")

    # a re-run of a finished search trains nothing; a different space must not silently mix in
    trained.clear()
    again = search.run_search(tiles, **args)
    assert trained == [] and again["completed"] == 4
    with pytest.raises(TuningError, match="--overwrite"):
        search.run_search(tiles, **{**args, "space": {"optimizer": ["adam"]}})
    with pytest.raises(TuningError, match="other batch_size"):  # a fixed setting changed: not mixed in either
        search.run_search(tiles, **{**args, "batch_size": 3})
    fresh = search.run_search(tiles, overwrite=True, **{**args, "space": {"optimizer": ["adam"]}})
    assert fresh["trials"] == 1 and len(read_trials(os.path.join(logdir, "opt-grid"))) == 1


def test_text_task_random_search_on_cer(tmp_path):
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.tuning.search import run_search

    data = str(tmp_path / "captchas")
    generate_captchas(data, count=30, length=(3, 4), charset="abc123", size=(96, 32), seed=0)
    summary = run_search(
        data,
        task="text",
        space={"optimizer": ["adam", "rmsprop"]},
        tuner="random",
        max_trials=2,
        epochs=1,
        image_size=(32, 64),
        batch_size=8,
        precision="float32",
        charset="abc123",
        model_kwargs={"rnn_units": 8, "rnn_layers": 1, "filters": [4, 4, 8, 8]},
        augment=False,
        logdir=str(tmp_path / "logs"),
        name="text",
        out=str(tmp_path / "out"),
    )
    assert summary["objective"] == "val_cer" and summary["completed"] == 2
    trials = read_trials(str(tmp_path / "logs" / "text"))
    assert {t["hparams"]["optimizer"] for t in trials.values()} == {"adam", "rmsprop"}
    for t in trials.values():
        assert {"val_cer", "val_exact_match", "val_loss"} <= set(t["metrics"])
    assert summary["test"]["n"] > 0 and 0 <= summary["test"]["cer"]
    # The trials' models take the input `train --task text` fits: the colour map over RGB, not fixed grayscale.
    from recaptcha_tf.inference.loading import load_model

    best = load_model(str(tmp_path / "out" / "model.keras"))
    assert "ink" in [layer.name for layer in best.layers] and best.input_shape[-1] == 3


def test_chars_task_hyperband_over_architecture(tmp_path):
    from recaptcha_tf.tuning.search import run_search

    data = str(tmp_path / "glyphs")
    make_class_folders(data, classes=("a", "b", "c"), per_class=8, modes=("L",))
    summary = run_search(
        data,
        task="chars",
        space={"c2d_layers": [1, 2], "dropout": [0.1]},
        tuner="hyperband",
        epochs=3,
        image_size=(16, 16),
        batch_size=8,
        precision="float32",
        augment=False,
        model_kwargs={"filters": 4, "dense_layers": 0},
        logdir=str(tmp_path / "logs"),
        name="chars",
        out=str(tmp_path / "out"),
        objective="accuracy",
    )
    assert summary["objective"] == "val_accuracy" and summary["completed"] >= 2
    trials = read_trials(str(tmp_path / "logs" / "chars"))
    assert len(trials) == summary["trials"]
    assert all(t["hparams"]["c2d_layers"] in (1, 2) for t in trials.values())
    assert os.path.exists(str(tmp_path / "out" / "model.keras"))


# ---------------------------------------------------------------- command line


def test_tune_command_help_dry_run_and_user_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tune", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "usage: recaptcha-tf tune" in text and "(default: grid)" in text and "KERASTUNER_ORACLE_IP" in text
    assert main(["tune", "--data", str(tmp_path), "--search", "architecture", "--dry-run"]) == 0
    assert "# 72 combinations" in capsys.readouterr().out
    space = tmp_path / "focal.yaml"
    space.write_text("loss: [focal, ctc]\n")
    assert (
        main(["tune", "--task", "text", "--data", str(tmp_path), "--space", str(space), "--out", str(tmp_path / "out")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: loss 'focal' does not fit task 'text'") and len(err.splitlines()) == 1
    assert (
        main(
            [
                "tune",
                "--data",
                str(tmp_path),
                "--tuner",
                "hyperband",
                "--max-trials",
                "3",
                "--out",
                str(tmp_path / "out"),
                "--logdir",
                str(tmp_path / "logs"),
            ]
        )
        == 2
    )
    assert "--max-trials does not apply to Hyperband" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")  # user errors are found before anything is written


# ---------------------------------------------------------------- distributed


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_chief_and_two_workers(tiles, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("optimizer: [adam, rmsprop]\nloss: [focal, label_smoothed_crossentropy]\n")
    out, logdir = str(tmp_path / "out"), str(tmp_path / "logs")
    command = [
        sys.executable,
        "-m",
        "recaptcha_tf",
        "tune",
        "--data",
        tiles,
        "--space",
        str(space),
        "--epochs",
        "1",
        "--image-size",
        "16",
        "--batch-size",
        "8",
        "--precision",
        "float32",
        "--no-augment",
        "--out",
        out,
        "--logdir",
        logdir,
        "--run-name",
        "dist",
        *[a for k, v in TINY_CNN.items() for a in ("--model-arg", f"{k}={v}")],
    ]
    env = {
        **os.environ,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(_free_port()),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "-1",
    }
    procs = {
        tid: subprocess.Popen(
            command,
            env={**env, "KERASTUNER_TUNER_ID": tid},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for tid in ("chief", "tuner0", "tuner1")
    }
    try:
        logs = {tid: p.communicate(timeout=300)[0] for tid, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    for tid, p in procs.items():
        assert p.returncode == 0, f"{tid}:\n{logs[tid][-3000:]}"
    infos = [
        json.load(open(os.path.join(out, "search", d, "recaptcha_trial.json")))
        for d in sorted(os.listdir(os.path.join(out, "search")))
        if d.startswith("trial_")
    ]
    combos = [(i["hyperparameters"]["optimizer"], i["hyperparameters"]["loss"]) for i in infos]
    assert len(combos) == 4 and set(combos) == set(
        itertools.product(["adam", "rmsprop"], ["focal", "label_smoothed_crossentropy"])
    )
    workers = [i["worker"] for i in infos]
    assert set(workers) == {"tuner0", "tuner1"}, workers  # both workers ran trials, none ran on the chief
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["role"] == "chief" and summary["completed"] == 4
    assert len(read_trials(os.path.join(logdir, "dist"))) == 4
    assert os.path.exists(os.path.join(out, "model.keras"))


@pytest.mark.parametrize("model, policy", [("cnn", "mixed_bfloat16"), ("mobilenetv2", "float32")])
def test_trials_take_the_precision_train_would_for_the_model(tiles, tmp_path, monkeypatch, model, policy):
    # depthwise backbones train slower in bfloat16 on a CPU: `auto` keeps them in float32 in a search as in `train`
    from recaptcha_tf.models import precision as precision
    from recaptcha_tf.tuning.hypermodel import CaptchaHyperModel, prepare_task_data

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)  # a CPU with bfloat16 instructions
    task_data = prepare_task_data("tiles", tiles, str(tmp_path / "search"), model, (32, 32), 3, "stretch", 4)
    hypermodel = CaptchaHyperModel(task_data, {}, "val_macro_f1", "max", ["accuracy"])
    built = hypermodel.build(kt.HyperParameters())
    layers = {layer.dtype_policy.name for layer in built._flatten_layers() if layer.weights}
    assert policy in layers and (layers == {"float32"}) == (policy == "float32")  # outputs stay float32 in either
