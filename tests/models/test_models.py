import keras
import numpy as np
import pytest

from recaptcha_tf.models import build_classifier, build_model, build_text_model, list_models
from recaptcha_tf.models.cnn import build_cnn
from recaptcha_tf.models.registry import model_head
from recaptcha_tf.tasks import get_task


def test_registry_lists_every_family():
    names = list_models()
    assert {"cnn", "resnet18", "resnet34", "crnn", "multihead"} <= set(names)
    assert "crnn" in get_task("text").models() and "crnn" not in get_task("tiles").models()
    assert get_task("chars").models() == get_task("tiles").models() == list_models("classifier")


@pytest.mark.parametrize("name", [n for n in list_models() if model_head(n) == "classifier"])
def test_every_classifier_entry_builds_and_runs(name):
    model = build_classifier(name, ["a", "b", "c"], image_size=(32, 32))
    out = model.predict(np.random.randint(0, 255, (2, 40, 50, 3), dtype=np.uint8), verbose=0)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", get_task("text").models())
def test_text_entries_build_and_run(name):
    model = build_text_model(name, "abc", image_size=(32, 128), max_length=5)
    out = model.predict(np.random.randint(0, 255, (2, 50, 200, 1), dtype=np.uint8), verbose=0)
    assert out.shape[0] == 2 and out.shape[-1] == 4
    # multihead: one output per character; crnn: a frame per 4 pixels of width; the MobileNetV2 trunk: per 8
    assert out.shape[1] == {"multihead": 5, "crnn": 32, "crnn_mobilenetv2": 16}[name]


def test_unknown_model_and_argument():
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        build_model("nope", (32, 32, 3), 2)
    with pytest.raises(TypeError, match="does not take"):
        build_model("cnn", (32, 32, 3), 2, bogus=1)


def test_batchnorm_sits_between_conv_or_dense_and_activation():
    model = build_cnn((32, 32, 3), 4, conv_layers=3, dense_layers=2)
    layers = model.layers
    checked = 0
    for i, layer in enumerate(layers):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.name != "predictions":
            assert not layer.use_bias
            assert isinstance(layers[i + 1], keras.layers.BatchNormalization), layer.name
            assert isinstance(layers[i + 2], keras.layers.LeakyReLU), layer.name
            checked += 1
    assert checked == 3 * 2 + 2


def test_cnn_knobs_change_the_architecture():
    small = build_cnn((32, 32, 3), 2, conv_layers=2, filters=8, dense_layers=0)
    big = build_cnn(
        (32, 32, 3), 2, conv_layers=4, filters=[8, 16, 32, 64], dense_layers=2, dense_units=32, activation="elu"
    )
    assert small.count_params() < big.count_params()
    assert any(isinstance(layer, keras.layers.Activation) for layer in big.layers)
    with pytest.raises(ValueError):
        build_cnn((32, 32, 3), 2, conv_layers=2, filters=[8])


def test_resnet18_matches_reference_parameter_count():
    model = build_model("resnet18", (224, 224, 3), 1000)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # torchvision.models.resnet18(): 11,689,512 parameters (BN running stats are buffers there).
    assert trainable == 11_689_512


def test_saved_classifier_loads_in_safe_mode_and_knows_its_classes(tmp_path):
    model = build_classifier("cnn", ["bus", "palm"], image_size=(24, 24), conv_layers=2, filters=4)
    x = np.random.randint(0, 255, (3, 30, 20, 3), dtype=np.uint8)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert loaded.get_layer("label_names").names == ["bus", "palm"]
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded._flatten_layers())


def test_calling_a_model_directly_runs_in_inference_mode():
    """model(x) must equal model.predict(x); training=True must still switch dropout and BatchNorm on."""
    model = build_classifier(
        "cnn", ["a", "b"], image_size=(24, 24), conv_layers=1, filters=4, dense_units=4, dropout=0.5
    )
    x = np.random.default_rng(0).uniform(0, 255, (4, 30, 30, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), model.predict(x, verbose=0), atol=1e-6)
    trained = keras.ops.convert_to_numpy(model(x, training=True))
    assert np.abs(trained - keras.ops.convert_to_numpy(model(x, training=False))).max() > 1e-3
