"""Model zoo: pretrained-weight paths, freezing, two-phase fine-tuning, multi-label data and the challenge score."""

import csv
import json
import os

import keras
import numpy as np
import pytest
from conftest import make_class_folders

from recaptcha_tf.data.folders import DatasetError
from recaptcha_tf.data.multilabel import multilabel_split, read_label_csv
from recaptcha_tf.evaluation.challenge import assemble_challenges, challenge_report, pick_cells
from recaptcha_tf.evaluation.metrics import multilabel_report
from recaptcha_tf.evaluation.workflow import evaluate
from recaptcha_tf.inference.loading import load_model, model_info
from recaptcha_tf.inference.predictor import predict
from recaptcha_tf.models import build_classifier, build_model
from recaptcha_tf.models.finetune import (
    backbone_blocks,
    find_backbone,
    freeze_backbone,
    trainable_parameters,
    unfreeze_backbone,
)
from recaptcha_tf.models.registry import ModelConfigError
from recaptcha_tf.models.weights import WeightsError
from recaptcha_tf.training.classifier import train_classifier

SMALL = (32, 32, 3)


def _same_weights(a, b):
    return len(a.weights) == len(b.weights) and all(
        np.array_equal(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y))
        for x, y in zip(a.weights, b.weights)
    )


@pytest.mark.parametrize(
    "name,kwargs",
    [("mobilenetv2", {"alpha": 0.35}), ("resnet18", {}), ("vit-tiny", {"patch_size": 8, "num_layers": 2})],
)
def test_weights_path_loads_a_saved_backbone(tmp_path, name, kwargs):
    source = build_model(name, SMALL, 4, **kwargs)
    path = str(tmp_path / "backbone.weights.h5")
    find_backbone(source).save_weights(path)
    fresh = build_model(name, SMALL, 4, **kwargs)
    assert not _same_weights(find_backbone(fresh), find_backbone(source))  # random init differs
    loaded = build_model(name, SMALL, 4, weights=path, **kwargs)
    assert _same_weights(find_backbone(loaded), find_backbone(source))


def test_weights_that_do_not_fit_and_missing_files_are_clear_errors(tmp_path):
    path = str(tmp_path / "resnet.weights.h5")
    find_backbone(build_model("resnet18", SMALL, 2)).save_weights(path)
    with pytest.raises(WeightsError, match="does not fit the mobilenetv2"):
        build_model("mobilenetv2", SMALL, 2, alpha=0.35, weights=path)
    with pytest.raises(WeightsError, match="no such file"):
        build_model("mobilenetv2", SMALL, 2, weights=str(tmp_path / "nope.weights.h5"))
    with pytest.raises(WeightsError, match="no ImageNet weights for resnet18"):
        build_model("resnet18", SMALL, 2, weights="imagenet")


def test_imagenet_weights_come_from_the_keras_cache(tmp_path, monkeypatch):
    """`--weights imagenet` goes through keras.utils.get_file: a pre-filled cache is used, no download."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras_home"))
    reference = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None)
    cache = tmp_path / "keras_home" / "models"
    cache.mkdir(parents=True)
    with h5py.File(cache / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    model = build_model("mobilenetv2", (96, 96, 3), 3, alpha=0.35, weights="imagenet")
    assert _same_weights(find_backbone(model), reference)


def test_imagenet_without_network_or_cache_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "empty"))

    def offline(fname, origin=None, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(
        WeightsError, match=r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0\.35_96_no_top\.h5.*empty"
    ):
        build_model("mobilenetv2", (96, 96, 3), 3, alpha=0.35, weights="imagenet")


@pytest.mark.parametrize(
    "name,kwargs",
    [("resnet18", {}), ("mobilenetv2", {"alpha": 0.35}), ("vit-tiny", {"patch_size": 8, "num_layers": 3})],
)
def test_freezing_freezes_and_unfreezing_restores(name, kwargs):
    model = build_classifier(name, ["a", "b", "c"], image_size=SMALL[:2], **kwargs)
    total = trainable_parameters(model)
    head = model.get_layer(name if name != "mobilenetv2" else "mobilenetv2_0.35")
    head_params = sum(int(np.prod(w.shape)) for w in head.get_layer("predictions").weights)
    assert freeze_backbone(model) == head_params
    top = unfreeze_backbone(model, 1)
    assert head_params < top < total
    freeze_backbone(model)
    assert unfreeze_backbone(model, "all", freeze_batchnorm=False) == total
    freeze_backbone(model)
    has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in find_backbone(model).layers)
    assert (unfreeze_backbone(model, "all") < total) == has_bn  # BatchNorm stays frozen by default
    blocks = [b for b, _ in backbone_blocks(find_backbone(model))]
    assert blocks[0] == "stem" and len(blocks) == len(set(blocks))
    # the registry entry's declared block pattern finds the same blocks
    from recaptcha_tf.models.registry import model_blocks

    assert model_blocks(name) and [b for b, _ in backbone_blocks(find_backbone(model), model_blocks(name))] == blocks
    # a pattern that finds no blocks is an error, not "the top N blocks" silently meaning all of them
    with pytest.raises(ModelConfigError, match="Found no blocks"):
        unfreeze_backbone(model, 2, blocks=r"^(no_such_block)(_|$)")


def test_the_hybrid_vits_declared_blocks_fit_both_of_its_trunks():
    from recaptcha_tf.models.registry import model_blocks

    for trunk in ("efficientnet-lite0", "mobilenetv2"):
        model = build_classifier("vit-hybrid", ["a", "b"], image_size=(64, 64), trunk=trunk)
        blocks = [b for b, _ in backbone_blocks(find_backbone(model), model_blocks("vit-hybrid"))]
        assert len(blocks) > 10 and blocks == [b for b, _ in backbone_blocks(find_backbone(model))], trunk


def test_each_model_declares_its_tuning_aliases_against_its_own_builder_arguments():
    import inspect

    from recaptcha_tf.models.registry import list_models, model_builder, model_head, model_tune_aliases
    from recaptcha_tf.tuning.spaces import ARCHITECTURE_KEYS, allowed_keys

    for name in list_models():
        aliases = model_tune_aliases(name)
        params = inspect.signature(model_builder(name)).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):  # resnet18/34 pass them on
            from recaptcha_tf.models.resnet import resnet_basic

            params = inspect.signature(resnet_basic).parameters
        # text models take the depth as the length of their `filters` list (tuning.spaces.model_kwargs builds it)
        pseudo = {"conv_layers"} if model_head(name) != "classifier" else set()
        assert set(aliases) <= set(ARCHITECTURE_KEYS) and set(aliases.values()) <= set(params) | pseudo, name
    assert model_tune_aliases("cnn")["dense_neurons"] == "dense_units" and "c2d_layers" in allowed_keys("tiles", "cnn")
    assert model_tune_aliases("crnn")["dense_neurons"] == "rnn_units"
    assert "c2d_layers" not in allowed_keys("tiles", "mobilenetv2")  # no alias declared, no knob
    # every pretrained-capable classifier says where its blocks are (--unfreeze N); the plain cnn has no backbone
    from recaptcha_tf.models.registry import model_blocks

    assert [n for n in list_models() if model_head(n) == "classifier" and not model_blocks(n)] == ["cnn"]


@pytest.mark.slow
def test_frozen_pretrained_backbone_keeps_weights_and_batchnorm_statistics(tmp_path):
    path = str(tmp_path / "bb.weights.h5")
    find_backbone(build_model("resnet18", SMALL, 3, width=8)).save_weights(path)
    model = build_model("resnet18", SMALL, 3, width=8, weights=path)
    backbone = find_backbone(model)
    before = [keras.ops.convert_to_numpy(w).copy() for w in backbone.weights]
    freeze_backbone(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (8, *SMALL)).astype("float32")
    model.fit(x, np.arange(8) % 3, epochs=2, verbose=0)
    assert all(np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, backbone.weights))
    # Unfrozen, BatchNorm stays frozen and in inference mode: moving statistics stay put, kernels train.
    unfreeze_backbone(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    moving = [(b, w) for b, w in zip(before, backbone.weights) if "moving" in w.path]
    assert moving and all(np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in moving)
    kernels = [(b, w) for b, w in zip(before, backbone.weights) if w.path.endswith("kernel")]
    assert any(not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in kernels)


@pytest.mark.slow
def test_two_phase_fine_tuning_runs_both_phases_and_resumes(tmp_path):
    from test_training import Interrupt

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=8)
    path = str(tmp_path / "bb.weights.h5")
    find_backbone(build_model("resnet18", SMALL, 3, width=8)).save_weights(path)
    out = str(tmp_path / "run")
    kwargs = dict(
        model="resnet18",
        model_kwargs={"width": 8},
        image_size=(32, 32),
        epochs=3,
        batch_size=8,
        weights=path,
        freeze_epochs=1,
        unfreeze=2,
        logdir=None,
        patience=0,
    )
    with pytest.raises(KeyboardInterrupt):  # killed after the first fine-tuning epoch
        train_classifier(data, out, callbacks=[Interrupt(after=2)], **kwargs)
    assert os.path.exists(os.path.join(out, "phase1.weights.h5"))
    summary = train_classifier(data, out, **kwargs)
    assert summary["epochs_this_session"] == 1  # phase 1 is not repeated; phase 2 resumes at its last epoch
    assert summary["epochs_run"] == 3
    with open(os.path.join(out, "history.csv")) as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["freeze_epochs"] == 1
    assert config["fine_tune_learning_rate"] == pytest.approx(config["learning_rate"] / 10)
    assert model_info(load_model(out)).names == ["bus", "hydrant", "traffic_light"]


@pytest.mark.slow
def test_phase_two_is_replanned_from_phase_one_and_a_resumed_run_keeps_the_plan(tmp_path):
    from recaptcha_tf.training.phases import fit_in_phases

    model = build_model("resnet18", SMALL, 3, width=8)
    x = np.random.default_rng(0).uniform(0, 255, (8, *SMALL)).astype("float32")
    y = np.arange(8) % 3
    fits, seen = [], []

    def compile_for(phase_epochs, learning_rate):
        model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")

    def fit_phase(first, last, phase):
        fits.append((first, last, phase))
        return len(model.fit(x, y, initial_epoch=first, epochs=last, verbose=0).history["loss"])

    def replan(frozen_epoch_seconds):
        seen.append(frozen_epoch_seconds)
        return 3

    out = str(tmp_path / "run")
    os.makedirs(out)
    phases = (compile_for, fit_phase, 6, 2, "all", 1e-3, 1e-4)
    assert fit_in_phases(model, out, *phases, replan=replan) == 3
    assert fits == [(0, 2, 1), (2, 3, 2)] and len(seen) == 1 and seen[0] > 0
    assert json.load(open(os.path.join(out, "phase2_plan.json")))["epochs"] == 3
    # resumed after phase 1 (killed in phase 2): the stored plan, not a new one
    fits.clear()
    fit_in_phases(model, out, *phases, replan=lambda seconds: 5)
    assert fits == [(2, 3, 2)]
    # a plan never drops the fine-tuning phase, nor adds epochs to the run's
    for asked, runs_to in ((0, 3), (99, 6)):
        fresh = str(tmp_path / f"run{asked}")
        os.makedirs(fresh)
        fits.clear()
        fit_in_phases(model, fresh, *phases, replan=lambda seconds, asked=asked: asked)
        assert fits[-1] == (2, runs_to, 2)


# --- multi-label -----------------------------------------------------------------------------------------------


def _multilabel_data(root, n=24):
    rng = np.random.default_rng(0)
    from conftest import tile_image

    os.makedirs(os.path.join(root, "imgs"))
    rows = []
    for i in range(n):
        labels = [["car"], ["car", "bus"], ["bus"], [], ["hydrant", "car"], ["hydrant"]][i % 6]
        tile_image(i % 3, rng, 24).save(os.path.join(root, "imgs", f"{i:03d}.png"))
        rows.append((f"imgs/{i:03d}.png", ";".join(labels)))
    path = os.path.join(root, "labels.csv")
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("path", "labels"), *rows])
    return path


def test_label_csv_is_read_and_split_keeps_every_label(tmp_path):
    csv_path = _multilabel_data(str(tmp_path))
    paths, labels, names = read_label_csv(csv_path, root=str(tmp_path))
    assert names == ["bus", "car", "hydrant"] and len(paths) == 24
    assert labels[1] == [0, 1] and labels[3] == []
    split = multilabel_split(paths, labels, names, "50/25/25", seed=3)
    assert split.extra["multi_label"] and split.class_names == names
    for subset in ("train", "val", "test"):
        present = {c for _, labs in split.subset(subset) for c in labs}
        assert present == {0, 1, 2}, subset
    again = multilabel_split(paths, labels, names, "50/25/25", seed=3)
    assert again.test == split.test


def test_label_csv_errors_name_the_problem(tmp_path):
    csv_path = _multilabel_data(str(tmp_path))
    with pytest.raises(DatasetError, match=r"labels the model does not know: \['hydrant'\]"):
        read_label_csv(csv_path, root=str(tmp_path), class_names=["bus", "car"])
    with open(csv_path, "a") as f:
        f.write("imgs/missing.png,car\n")
    with pytest.raises(DatasetError, match="missing.png"):
        read_label_csv(csv_path, root=str(tmp_path))


def test_multilabel_report_on_a_hand_computed_case():
    probs = np.array([[0.9, 0.6, 0.1], [0.2, 0.4, 0.7], [0.8, 0.1, 0.3]])
    truth = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]])
    r = multilabel_report(probs, truth, ["a", "b", "c"], threshold=0.5)
    # predictions: [1,1,0], [0,0,1], [1,0,0]: 9 cells, 3 wrong; rows exact: only the first
    assert r["hamming_accuracy"] == pytest.approx(6 / 9)
    assert r["subset_accuracy"] == pytest.approx(1 / 3)
    # top-1: a (true), c (true), a (false)
    assert r["top1"] == pytest.approx(2 / 3)
    assert r["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert r["per_class"]["b"]["recall"] == 0.5 and r["per_class"]["b"]["precision"] == 1.0
    assert r["per_class"]["c"]["recall"] == 0.5


@pytest.mark.slow
def test_multilabel_training_and_evaluate_report(tmp_path):
    csv_path = _multilabel_data(str(tmp_path), n=36)
    out = str(tmp_path / "run")
    summary = train_classifier(
        str(tmp_path),
        out,
        multi_label=True,
        labels_csv=csv_path,
        image_size=(24, 24),
        epochs=1,
        batch_size=8,
        logdir=None,
        threshold=0.4,
        model_kwargs=dict(conv_layers=2, filters=4, dense_units=8),
    )
    assert {"hamming_accuracy", "subset_accuracy", "top1", "challenge"} <= set(summary["test"])
    model = load_model(out)
    info = model_info(model)
    assert info.kind == "sigmoid" and info.threshold == pytest.approx(0.4)
    report = evaluate(out, str(tmp_path), labels_csv=csv_path, subset="all", challenges=20)
    assert report["n"] == 36 and set(report["per_class"]) == {"bus", "car", "hydrant"}
    result = predict(model, [os.path.join(str(tmp_path), "imgs", "000.png")])[0]
    assert set(result["labels"]) <= {"bus", "car", "hydrant"}


# --- challenge-level score -------------------------------------------------------------------------------------


def test_challenges_are_seeded_and_well_formed():
    labels = [i % 4 for i in range(80)]
    names = ["bus", "car", "other", "hydrant"]
    a = assemble_challenges(labels, names, grid=3, count=30, seed=1)
    assert a == assemble_challenges(labels, names, grid=3, count=30, seed=1)
    assert a != assemble_challenges(labels, names, grid=3, count=30, seed=2)
    for ch in a:
        assert len(ch["tiles"]) == 9 == len(set(ch["tiles"]))
        assert names[ch["target"]] != "other"
        assert 2 <= len(ch["answer"]) <= 5
        assert ch["answer"] == [p for p, t in enumerate(ch["tiles"]) if labels[t] == ch["target"]]
    four = assemble_challenges(labels, names, grid=4, count=5, seed=1)
    assert all(len(ch["tiles"]) == 16 and 3 <= len(ch["answer"]) <= 8 for ch in four)


def test_challenge_score_on_a_hand_built_case():
    # 20 tiles of classes 0/1; the "model" is right on every tile except tile 0 (a class-0 tile called class 1).
    labels = [0] * 10 + [1] * 10
    probs = np.eye(2)[labels].astype(float)
    probs[0] = [0.2, 0.8]
    assert pick_cells(probs[[0, 1, 10]], 0) == [1]
    assert pick_cells(probs[[0, 1, 10]], 1, threshold=0.5) == [0, 2]
    report = challenge_report(probs, labels, ["a", "b"], grids=(3,), count=200, seed=0)["3x3"]
    challenges = assemble_challenges(labels, ["a", "b"], 3, 200, 0)
    # A challenge fails exactly when tile 0 is in it (one tile wrong), whatever the target.
    with_tile0 = [0 in ch["tiles"] for ch in challenges]
    assert report["challenges"] == 200
    assert report["solved"] == pytest.approx(1 - np.mean(with_tile0))
    assert report["mean_tile_errors"] == pytest.approx(np.mean(with_tile0))
    assert 0 < report["solved"] < 1
