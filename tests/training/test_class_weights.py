"""``train --class-weight``: balanced or named per-class loss weights, through ``model.fit`` for every target form."""

import json
import os

import keras
import numpy as np
import pytest
from conftest import make_class_folders

from recaptcha_tf.data.splits import Split
from recaptcha_tf.training.class_weights import loss_class_weights, parse_class_weight
from recaptcha_tf.training.phases import TrainingConfigError

TINY = dict(image_size=(24, 24), logdir=None, model_kwargs=dict(conv_layers=2, filters=8, dense_units=16))


def test_parse_class_weight_forms_and_errors():
    assert parse_class_weight("none") == "none" and parse_class_weight(" balanced ") == "balanced"
    assert parse_class_weight("other=3") == {"other": 3.0}
    assert parse_class_weight("other=3, bus=0.5") == {"other": 3.0, "bus": 0.5}
    for bad in ("other", "other=", "=3", "other=0", "other=-1", "other=inf", "other=nan", "other=x", "Balanced"):
        with pytest.raises(TrainingConfigError, match="NAME=WEIGHT"):
            parse_class_weight(bad)
    with pytest.raises(TrainingConfigError, match="twice"):
        parse_class_weight("a=1,a=2")


def test_loss_class_weights_cover_every_class_and_name_unknown_ones():
    split = Split(class_names=["bus", "car", "other"], train=[("a", 0), ("b", 0), ("c", 1), ("d", 2)], val=[], test=[])
    assert loss_class_weights("none", split) is None
    assert loss_class_weights("other=3", split) == {0: 1.0, 1: 1.0, 2: 3.0}
    balanced = loss_class_weights("balanced", split)
    assert balanced[0] == pytest.approx(4 / (3 * 2)) and balanced[2] == pytest.approx(4 / 3)
    with pytest.raises(TrainingConfigError, match="'boat'.*bus, car, other"):
        loss_class_weights("boat=2", split)


@pytest.mark.parametrize("target", ["sparse", "one_hot", "packed", "packed_mixed"])
def test_training_batches_weigh_each_image_by_its_label_class(target):
    """With a zero learning rate, the loss ``fit`` reports on :func:`weigh_by_class`'s batches is the class-weighted
    mean of the per-image losses at the initial weights: for sparse, one-hot and distillation's ``[one-hot,
    teacher]`` targets, also where a teacher is certain of another class, and where mixup blended the packed
    target so that the teachers' half holds its largest value (Keras' ``class_weight`` would index past C there)."""
    import tensorflow as tf

    from recaptcha_tf.training.class_weights import weigh_by_class
    from recaptcha_tf.training.distillation import DistillationLoss, packed_targets

    rng = np.random.default_rng(0)
    n, classes = 12, 3
    x = rng.normal(size=(n, 4)).astype("float32")
    labels = np.arange(n) % classes
    one_hot = keras.utils.to_categorical(labels, classes)
    teacher = keras.utils.to_categorical((labels + 1) % classes, classes)  # certain, and wrong: ties at 1.0
    if target == "packed_mixed":  # 0.6 of the image's own label, 0.4 of its neighbour's (as MixUp blends)
        neighbour = np.roll(one_hot, 1, axis=0)
        one_hot, teacher = 0.6 * one_hot + 0.4 * neighbour, 0.7 * one_hot + 0.3 * neighbour  # teachers peak higher
        assert (packed_targets(one_hot, teacher).argmax(-1) >= classes).all()  # past C for a whole-row arg-max
    y, loss = {
        "sparse": (labels, keras.losses.SparseCategoricalCrossentropy()),
        "one_hot": (one_hot, keras.losses.CategoricalCrossentropy()),
        "packed": (packed_targets(one_hot, teacher), DistillationLoss(classes)),
        "packed_mixed": (packed_targets(one_hot, teacher), DistillationLoss(classes)),
    }[target]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
    per_image = np.asarray(keras.ops.convert_to_numpy(loss.call(keras.ops.convert_to_tensor(y), model(x))))
    weights = {0: 1.0, 1: 1.0, 2: 5.0}
    dataset = weigh_by_class(tf.data.Dataset.from_tensor_slices((x, y)).batch(n), weights, classes)
    history = model.fit(dataset, epochs=1, verbose=0)
    expected = float(np.sum(per_image * np.array([weights[k] for k in labels])) / n)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert expected != pytest.approx(float(per_image.mean()), rel=1e-3)  # the weights change the loss


@pytest.mark.slow
def test_named_class_weights_reach_fit_and_keep_the_default_oversampling(tmp_path, monkeypatch):
    import recaptcha_tf.training.run as run_module
    from recaptcha_tf.training.classifier import train_classifier

    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=20)
    for name in sorted(os.listdir(os.path.join(data, "traffic_light")))[8:]:
        os.remove(os.path.join(data, "traffic_light", name))
    seen = {}
    original = run_module.fit_run

    def recording_fit_run(dist, net, out, config, train_ds, *args, **kwargs):
        seen["class_weight"] = kwargs.get("class_weight")
        seen["batch"] = next(iter(train_ds))
        return original(dist, net, out, config, train_ds, *args, **kwargs)

    monkeypatch.setattr(run_module, "fit_run", recording_fit_run)
    out = str(tmp_path / "run")
    train_classifier(data, out, epochs=1, class_weight="traffic_light=5", **TINY)
    from recaptcha_tf.data.splits import load_manifest

    names = load_manifest(out).class_names
    assert seen["class_weight"] is None  # per-image weights in the batches instead
    _, targets, weights = (np.asarray(t) for t in seen["batch"])
    classes = targets.argmax(-1) if targets.ndim == 2 else targets
    np.testing.assert_allclose(weights, [5.0 if names[c] == "traffic_light" else 1.0 for c in classes])
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["class_weight"] == "traffic_light=5" and config["balance_per_class"] == 14  # still oversampled
    with pytest.raises(TrainingConfigError, match="'boat'"):
        train_classifier(data, str(tmp_path / "bad"), epochs=1, class_weight="boat=2", **TINY)
