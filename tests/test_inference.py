"""The compiled predictor (`Inference`): parity with the old tf.data + model.predict path, order, errors."""

import os

import numpy as np
import pytest
from conftest import train_tiny_classifier, train_tiny_crnn

from recaptcha_tf.data.images import CorruptImageError
from recaptcha_tf.data.pipeline import make_dataset
from recaptcha_tf.export import float32_model, list_images
from recaptcha_tf.inference.loading import load_model, model_info
from recaptcha_tf.inference.predictor import Inference, inference_for, predict, predict_outputs

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes


def legacy_outputs(model, sources):
    """The path before issue #15: a fresh tf.data pipeline and ``model.predict`` per call."""
    info = model_info(model)
    ds = make_dataset(
        sources,
        None,
        image_size=info.image_size,
        channels=info.channels,
        resize=info.resize,
        batch_size=64,
        cache=False,
    )
    return model.predict(ds, verbose=0)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    run, data = train_tiny_classifier(tmp_path_factory.mktemp("inf_cls"), sizes=(24, 31, 17))
    return load_model(run), list_images(data)


@pytest.fixture(scope="module")
def crnn_run(tmp_path_factory):
    return train_tiny_crnn(tmp_path_factory.mktemp("inf_text"), count=12, charset="abc")


@pytest.fixture(scope="module")
def crnn(crnn_run):
    run, data = crnn_run
    return load_model(run), list_images(data)


def test_outputs_match_the_old_pipeline_in_order(classifier):
    model, files = classifier
    expected = legacy_outputs(float32_model(model), files)
    inf = Inference.from_model(model)
    got = inf.outputs(files, batch_size=5)  # several batches, a short last one
    assert got.shape == expected.shape == (len(files), 3)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # bytes decode like files, and the cached predictor behind predict() gives the same numbers
    as_bytes = [open(f, "rb").read() for f in files[:4]]
    np.testing.assert_allclose(predict_outputs(model, as_bytes), expected[:4], atol=1e-5)
    assert inference_for(model) is inference_for(model)
    assert [r["label"] for r in predict(model, files)] == [model_info(model).names[i] for i in expected.argmax(1)]


def test_text_outputs_and_decoding_match(crnn):
    model, files = crnn
    expected = legacy_outputs(float32_model(model), files)
    got = inference_for(model).outputs(files, batch_size=4)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    from recaptcha_tf.inference.decoding import decode_text_outputs

    texts = [t for t, _ in decode_text_outputs(expected, model_info(model).names, "ctc")]
    assert [r["text"] for r in predict(model, files)] == texts


def test_text_ensembles_vote_on_the_members_readings(crnn_run, tmp_path):
    from recaptcha_tf.evaluation.workflow import ensemble_text_readings, evaluate
    from recaptcha_tf.inference.decoding import decode_text_outputs, vote_texts
    from recaptcha_tf.models import build_text_model

    run, data = crnn_run
    model = load_model(run)
    info = model_info(model)
    files = list_images(data)
    single = evaluate(run, data, subset="all")
    # the same run twice reads the same texts
    twice = evaluate(run, data, subset="all", ensemble=[run])
    assert twice["ensemble_method"] == "vote" and twice["ensemble"] == [os.path.abspath(run)]
    assert (twice["exact_match"], twice["cer"]) == (single["exact_match"], single["cer"])
    # a model with another input width (other frames) takes part too: each model reads, and the readings are voted on
    wider = build_text_model("crnn", info.names, (32, 96), channels=info.channels, max_length=4, rnn_units=8)
    wider.save(str(tmp_path / "wider.keras"))
    outputs = predict_outputs(model, files)
    readings = ensemble_text_readings(model, outputs, [str(tmp_path / "wider.keras")], files)
    own = decode_text_outputs(outputs, info.names, "ctc")
    theirs = decode_text_outputs(predict_outputs(load_model(str(tmp_path / "wider.keras")), files), info.names, "ctc")
    assert readings == vote_texts([own, theirs])
    assert all(r in (a, b) for r, a, b in zip(readings, own, theirs))


def test_mixed_precision_model_runs_in_float32_within_tolerance(classifier):
    import keras

    from recaptcha_tf.models import build_classifier
    from recaptcha_tf.models.precision import precision_policy

    _, files = classifier
    with precision_policy("mixed_bfloat16"):
        model = build_classifier("cnn", ["a", "b", "c"], image_size=(24, 24), conv_layers=1, filters=4, dense_units=8)
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in model.layers)
    expected = legacy_outputs(model, files[:8])
    fast = Inference.from_model(model)  # float32 copy
    assert fast.model is not model and fast.model.layers[-1].dtype_policy.name == "float32"
    np.testing.assert_allclose(fast.outputs(files[:8]), expected, atol=2e-2)
    same = Inference.from_model(model, precision="model")
    assert same.model is model
    np.testing.assert_allclose(same.outputs(files[:8]), expected, atol=1e-5)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_unreadable_image_is_named(classifier, tmp_path):
    model, files = classifier
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(open(files[0], "rb").read()[:60])
    with pytest.raises(CorruptImageError, match="cut.png"):
        predict(model, [files[0], str(truncated), files[1]])
    with pytest.raises(CorruptImageError, match="missing.png"):
        predict(model, [str(tmp_path / "missing.png")])
    # the predictor keeps working after a failure
    assert len(predict(model, files[:2])) == 2


def test_grid_cells_are_resized_like_files(classifier):
    from PIL import Image

    model, files = classifier
    inf = inference_for(model)
    pixels = np.asarray(Image.open(files[1]).convert("RGB"))
    np.testing.assert_array_equal(inf.preprocess_array(pixels), inf.preprocess(files[1]))
