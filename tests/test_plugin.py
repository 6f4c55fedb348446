"""A new head kind and a new task from a folder outside the package: a slider puzzle's gap offset, one number.

The plug-in below registers a head kind, an output kind, a model and a task, then trains, evaluates, predicts and
exports through the public API and the command line, without a line of the package edited. What it has to write:
its model, how its outputs read (one ``register_output_kind`` call), and its task's train and evaluate functions.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

PLUGIN = textwrap.dedent(
    '''
    """Slider puzzles: the gap's horizontal offset as a fraction of the width (a regression head)."""

    import os

    import keras
    import numpy as np
    from PIL import Image

    from recaptcha_tf.inference.outputs import register_output_kind
    from recaptcha_tf.inference.predictor import predict
    from recaptcha_tf.layers import LabelNames
    from recaptcha_tf.models import with_raw_image_input
    from recaptcha_tf.models.registry import register_head_kind, register_model
    from recaptcha_tf.tasks import register_task
    from recaptcha_tf.utils.run_folder import RunFolder, write_json

    SIZE = (24, 48)  # height, width

    register_head_kind("regression")
    register_output_kind(
        "regression",
        format=lambda outputs, names, threshold, top_k=3, beam_width=0: [
            {names[0]: float(v[0])} for v in outputs
        ],
        decide=lambda outputs, names, threshold: [round(float(v[0]), 2) for v in outputs],
        describe="(B, 1) the value names[0], unbounded",
    )


    @register_model("slider_net", head="regression")
    def slider_net(input_shape, num_outputs=1, **kwargs):
        inputs = keras.Input(input_shape)
        x = keras.layers.Rescaling(1 / 255.0)(inputs)
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D((4, 1))(x)
        x = keras.layers.Flatten()(x)
        return keras.Model(inputs, keras.layers.Dense(num_outputs)(x), name="slider_net")


    def _load(data):
        files = sorted(f for f in os.listdir(data) if f.endswith(".png"))
        offsets = np.array([float(f.split("_")[1]) for f in files], np.float32)
        images = np.stack([np.asarray(Image.open(os.path.join(data, f)).convert("RGB")) for f in files])
        return [os.path.join(data, f) for f in files], images.astype(np.float32), offsets


    def train_slider(data, out, epochs=30, seed=0, **options):
        keras.utils.set_random_seed(seed)
        paths, images, offsets = _load(data)
        net = with_raw_image_input(
            slider_net((*SIZE, 3)), 3, "stretch", LabelNames(["offset"], kind="regression", task="slider")
        )
        net.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        net.fit(images, offsets, epochs=epochs, batch_size=16, verbose=0)
        run = RunFolder(out)
        os.makedirs(run.path, exist_ok=True)
        net.save(run.model)
        report = evaluate_slider(run.path, data, net=net)
        summary = {"out": out, "epochs_run": epochs, "train_seconds": 0.0, "test": report}
        write_json(summary, run.summary)
        return summary


    def evaluate_slider(model_path, data, *, net=None, report=None, **options):
        paths, _, offsets = _load(data)
        read = np.array([r["offset"] for r in predict(net, paths)])
        result = {"n": len(paths), "mae": float(np.mean(np.abs(read - offsets)))}
        if report:
            write_json(result, report)
        return result


    register_task(
        "slider",
        "slider puzzles: the gap's offset",
        defaults={"model": "slider_net"},
        tune_model="slider_net",
        objectives={"val_loss": "min"},
        trial_metrics=("val_loss",),
        report_keys=("n", "mae"),
        heads=("regression",),
        workflows={"train": f"{__name__}:train_slider", "evaluate": f"{__name__}:evaluate_slider"},
    )
    '''
)


def _puzzles(folder, count, seed):
    """Grey images with a bright vertical gap at a known offset; the offset is in the file name."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        x = int(rng.integers(4, 40))
        image = np.full((24, 48, 3), 60, np.uint8) + rng.integers(0, 20, (24, 48, 3), dtype=np.uint8)
        image[:, x : x + 4] = 230
        Image.fromarray(image).save(os.path.join(folder, f"gap_{(x + 2) / 48:.4f}_{i:03d}.png"))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The plug-in imported from a temporary folder; every registry it touches is restored afterwards."""
    from recaptcha_tf.inference import outputs
    from recaptcha_tf.models import registry as models
    from recaptcha_tf.tasks import registry as tasks

    for module, names in ((tasks, ["_TASKS"]), (outputs, ["_KINDS"]), (models, ["_HEAD_KINDS"])):
        for name in names:
            monkeypatch.setattr(module, name, type(getattr(module, name))(getattr(module, name)))
    for name in ("_MODELS", "_HEADS", "_RECIPES", "_TUNE_ALIASES", "_BLOCKS", "_CPU_BFLOAT16"):
        monkeypatch.setattr(models, name, dict(getattr(models, name)))
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "slider_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("slider_plugin")
    yield module
    sys.modules.pop("slider_plugin", None)


@pytest.mark.slow
def test_a_plugin_head_and_task_train_evaluate_predict_and_export(plugin, tmp_path, capsys):
    import recaptcha_tf
    from recaptcha_tf.cli.main import main
    from recaptcha_tf.export import check_parity, export_model, read_sidecar
    from recaptcha_tf.tasks import get_task

    data, held_out = str(tmp_path / "train"), str(tmp_path / "held_out")
    _puzzles(data, 96, seed=0)
    _puzzles(held_out, 24, seed=1)
    assert get_task("slider").models() == ["slider_net"]

    run = recaptcha_tf.train(task="slider", data=data, out=str(tmp_path / "run"), epochs=40)
    assert run.summary["test"]["mae"] < 0.1  # a guess at the centre would be off by about 0.2

    capsys.readouterr()
    assert main(["evaluate", "--model", run.path, "--data", held_out]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 24 and report["mae"] < 0.15  # images it has not seen

    model = recaptcha_tf.load(run.path)
    image = os.path.join(held_out, sorted(os.listdir(held_out))[0])
    truth = float(os.path.basename(image).split("_")[1])
    assert abs(model.predict(image)["offset"] - truth) < 0.2

    artifact = export_model(run.path, "onnx")
    assert read_sidecar(artifact)["outputs"] == "(B, 1) the value names[0], unbounded"
    parity = check_parity(run.path, artifact, sources=[held_out])
    assert parity["passed"] and parity["kind"] == "regression"
    assert recaptcha_tf.load(artifact).predict(image)["offset"] == pytest.approx(
        model.predict(image)["offset"], abs=1e-4
    )
