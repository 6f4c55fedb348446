"""keras-hub presets as --weights, the efficientnet-lite0 and vit-hybrid entries, transfer recipes.

Nothing here downloads: a tiny EfficientNetBackbone is saved with ``save_to_preset``
and loaded through the same path a user's local preset folder takes.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import make_class_folders

TINY_EFFICIENTNET = dict(
    stackwise_width_coefficients=[1.0, 1.0],
    stackwise_depth_coefficients=[1.0, 1.0],
    stackwise_kernel_sizes=[3, 3],
    stackwise_num_repeats=[1, 1],
    stackwise_input_filters=[8, 8],
    stackwise_output_filters=[8, 16],
    stackwise_expansion_ratios=[1, 2],
    stackwise_squeeze_and_excite_ratios=[0, 0],
    stackwise_strides=[2, 2],
    stackwise_block_types=["v1", "v1"],
    stackwise_force_input_filters=[0, 0],
    activation="relu6",
    include_stem_padding=False,
    stem_conv_padding="same",
    dropout=0,
    min_depth=None,
    use_depth_divisor_as_min_depth=True,
    cap_round_filter_decrease=True,
    batch_norm_epsilon=1e-3,
    input_shape=(None, None, 3),
)


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """A keras-hub EfficientNet preset folder (config.json + model.weights.h5), no image converter."""
    import keras_hub

    folder = str(tmp_path_factory.mktemp("presets") / "tiny_efficientnet")
    keras_hub.models.EfficientNetBackbone(**TINY_EFFICIENTNET).save_to_preset(folder)
    return folder


def _backbone_weights(model):
    from recaptcha_tf.models.finetune import find_backbone

    return find_backbone(model).get_weights()


def test_parse_weights_tells_presets_files_and_mistakes_apart(tmp_path, tiny_preset):
    from recaptcha_tf.models.weights import WeightsError, parse_weights, weights_kind

    assert weights_kind("none") is None and weights_kind("imagenet") == "imagenet"
    assert weights_kind(tiny_preset) == "preset"
    assert weights_kind("efficientnet_lite0_ra_imagenet") == "preset"
    assert weights_kind("kaggle://keras/efficientnet/keras/efficientnet_lite0_ra_imagenet/2") == "preset"
    file = tmp_path / "w.weights.h5"
    file.write_bytes(b"x")
    assert weights_kind(str(file)) == "file"
    with pytest.raises(WeightsError, match="not a keras-hub preset"):
        parse_weights(str(tmp_path))  # a folder without config.json
    with pytest.raises(WeightsError, match="no such file or folder"):
        parse_weights(str(tmp_path / "missing.weights.h5"))


def test_a_local_preset_folder_loads_its_weights_and_default_normalisation(tiny_preset):
    import keras
    import keras_hub

    from recaptcha_tf.models import build_model
    from recaptcha_tf.models.efficientnet_lite import LITE_NORMALISATION

    saved = keras_hub.models.Backbone.from_preset(tiny_preset).get_weights()
    model = build_model("efficientnet-lite0", (32, 32, 3), 3, weights=tiny_preset)
    loaded = _backbone_weights(model)
    assert len(loaded) == len(saved) and all(np.array_equal(a, b) for a, b in zip(loaded, saved))
    norm = model.get_layer("normalise").get_config()
    assert (norm["scale"], norm["offset"]) == pytest.approx(LITE_NORMALISATION)
    # pixels 127 -> 0 at the backbone's input, as (x - 127) / 128 says
    probe = keras.Model(model.input, model.get_layer("normalise").output)
    assert float(probe(np.full((1, 32, 32, 3), 127.0, "float32")).numpy().max()) == pytest.approx(0.0, abs=1e-6)


def test_the_presets_image_converter_sets_the_normalisation(tmp_path):
    import keras_hub

    from recaptcha_tf.models import build_model

    folder = str(tmp_path / "with_converter")
    keras_hub.models.EfficientNetBackbone(**TINY_EFFICIENTNET).save_to_preset(folder)
    scale, offset = [1 / 58.4, 1 / 57.1, 1 / 57.4], [-2.1, -2.0, -1.8]
    keras_hub.layers.ImageConverter(scale=scale, offset=offset).save_to_preset(folder)
    model = build_model("efficientnet-lite0", (32, 32, 3), 2, weights=folder)
    norm = model.get_layer("normalise").get_config()
    assert norm["scale"] == pytest.approx(scale) and norm["offset"] == pytest.approx(offset)


def test_imagenet_maps_to_the_public_preset_and_offline_failure_names_the_folder(monkeypatch):
    import keras_hub

    from recaptcha_tf.models import build_model
    from recaptcha_tf.models.weights import WeightsError

    asked = []

    def offline(preset, **kwargs):
        asked.append(preset)
        raise ConnectionError("no network")

    monkeypatch.setattr(keras_hub.models.EfficientNetBackbone, "from_preset", offline)
    with pytest.raises(WeightsError, match="local preset folder"):
        build_model("efficientnet-lite0", (32, 32, 3), 2, weights="imagenet")
    assert asked == ["efficientnet_lite0_ra_imagenet"]


def test_presets_are_refused_by_models_that_are_not_keras_hub(tiny_preset):
    from recaptcha_tf.models import build_model
    from recaptcha_tf.models.weights import WeightsError

    with pytest.raises(WeightsError, match="not a keras-hub backbone"):
        build_model("mobilenetv2", (32, 32, 3), 2, alpha=0.35, weights=tiny_preset)


@pytest.mark.parametrize("multi_label", [False, True])
def test_hybrid_vit_on_a_pretrained_trunk_saves_and_loads_in_safe_mode(tmp_path, tiny_preset, multi_label):
    import keras

    from recaptcha_tf.models import build_model

    model = build_model(
        "vit-hybrid",
        (64, 64, 3),
        4,
        weights=tiny_preset,
        num_layers=1,
        hidden_dim=32,
        num_heads=2,
        mlp_dim=64,
        output_activation="sigmoid" if multi_label else "softmax",
    )
    assert model.get_layer("tokens").output.shape[1:] == (64, 1280)  # the tiny trunk has stride 8: an 8x8 grid
    x = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    out = model.predict(x, verbose=0)
    assert out.shape == (3, 4)
    if multi_label:
        assert not np.allclose(out.sum(1), 1.0)
    else:
        np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
    path = str(tmp_path / "hybrid.keras")
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(again.predict(x, verbose=0), out, atol=1e-6)


def test_hybrid_vit_takes_a_mobilenet_trunk(tmp_path):
    import keras

    from recaptcha_tf.models import build_model
    from recaptcha_tf.models.finetune import find_backbone

    trunk = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False, weights=None)
    file = str(tmp_path / "mnv2.weights.h5")
    trunk.save_weights(file)
    model = build_model("vit-hybrid", (64, 64, 3), 3, trunk="mobilenetv2", alpha=0.35, weights=file, num_layers=1)
    assert all(np.array_equal(a, b) for a, b in zip(find_backbone(model).get_weights(), trunk.get_weights()))


@pytest.mark.slow
def test_the_recipe_fills_what_the_user_left_unset(tmp_path, tiny_preset):
    """One command with a preset: the entry's transfer recipe supplies the phases and learning rates."""
    import keras

    from recaptcha_tf.models import pretrained_recipe
    from recaptcha_tf.training.classifier import train_classifier

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=6)
    out = str(tmp_path / "run")
    summary = train_classifier(
        data,
        out,
        model="efficientnet-lite0",
        weights=tiny_preset,
        image_size=(32, 32),
        epochs=2,
        batch_size=8,
        logdir=None,
        balance_per_class=0,
    )
    recipe = pretrained_recipe("efficientnet-lite0")
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    assert config["image_size"] == [32, 32] and config["epochs"] == 2  # given: kept
    assert config["freeze_epochs"] == min(recipe["freeze_epochs"], 1)  # the recipe's phase 1, fitted into 2 epochs
    assert config["fine_tune_learning_rate"] == recipe["fine_tune_learning_rate"]
    assert config["label_smoothing"] == recipe["label_smoothing"] and config["batch_size"] == 8
    assert config["weights"] == tiny_preset
    assert summary["epochs_run"] == 2
    model = keras.saving.load_model(os.path.join(out, "model.keras"), safe_mode=True)
    assert model.output_shape[-1] == 3


@pytest.mark.slow
def test_the_recipe_epochs_are_held_to_the_time_budget_and_a_resumed_run_keeps_its_measurement(
    tmp_path, tiny_preset, monkeypatch, caplog
):
    """A slow machine: the recipe's epochs are cut to the time budget, timed once, kept on resume."""
    from recaptcha_tf.data.splits import load_manifest
    from recaptcha_tf.models import pretrained_recipe
    from recaptcha_tf.models.finetune import find_backbone
    from recaptcha_tf.training import step_time
    from recaptcha_tf.training.classifier import train_classifier
    from recaptcha_tf.training.step_time import epochs_within

    timed = []

    def slow_machine(model, loss, dataset):  # the measurement itself is tested in tests/test_training.py
        frozen = not find_backbone(model).trainable
        timed.append("frozen" if frozen else "trainable")
        return 0.25 if frozen else 0.5  # seconds a step

    monkeypatch.setattr(step_time, "seconds_per_step", slow_machine)
    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=6)
    kwargs = dict(model="efficientnet-lite0", weights=tiny_preset, image_size=(32, 32), batch_size=4)
    kwargs |= dict(logdir=None, balance_per_class=0, time_budget=0.05)  # minutes: 3 s
    out = str(tmp_path / "run")
    with caplog.at_level("WARNING", logger="recaptcha_tf"):
        summary = train_classifier(data, out, **kwargs)
    split = load_manifest(out)
    steps, validation_steps = -(-len(split.train) // 4), -(-len(split.val) // 4)
    recipe = pretrained_recipe("efficientnet-lite0")
    config = json.load(open(os.path.join(out, "config.json")))
    read = config["read_seconds"]  # measured: reading the tiny set's batches takes milliseconds
    expected = epochs_within(recipe["epochs"], recipe["freeze_epochs"], steps, validation_steps, 0.25, 0.5, 0.05, read)
    assert timed == ["trainable", "frozen"] and 0 < read < 1
    assert recipe["freeze_epochs"] < expected < recipe["epochs"] and summary["epochs_run"] == expected
    assert "fit --time-budget 0.05 minutes" in caplog.text and "--epochs N runs exactly N" in caplog.text
    assert config["epochs"] == expected and config["time_budget_minutes"] == 0.05
    assert (config["step_seconds"], config["frozen_step_seconds"]) == (0.5, 0.25)
    # the same command again: the stored measurements are reused, so the config matches and the run is finished
    again = train_classifier(data, out, **kwargs)
    assert timed == ["trainable", "frozen"] and again["epochs_this_session"] == 0
    # explicit --epochs run exactly, with nothing timed
    train_classifier(data, str(tmp_path / "given"), epochs=2, **kwargs)
    assert len(timed) == 2 and "step_seconds" not in json.load(open(tmp_path / "given" / "config.json"))


def test_the_step_time_of_a_frozen_keras_hub_backbone_is_measured_on_a_frozen_copy(tiny_preset, monkeypatch):
    """The recipes time phase 1 with the backbone frozen; a clone rebuilt from config must stay frozen."""
    import keras
    import tensorflow as tf

    from recaptcha_tf.models import build_model
    from recaptcha_tf.models.finetune import freeze_backbone, trainable_parameters
    from recaptcha_tf.training import step_time as step_time

    model = build_model("efficientnet-lite0", (32, 32, 3), 3, weights=tiny_preset)
    head = freeze_backbone(model)
    seen = []
    monkeypatch.setattr(keras.Model, "train_on_batch", lambda self, x, y: seen.append(trainable_parameters(self)))
    images = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), "float32"), np.zeros((4, 3), "float32")))
    step_time.seconds_per_step(model, "mse", images.batch(2), steps=1, warm_up=1)
    assert seen == [head, head]  # the head only, as in the model
