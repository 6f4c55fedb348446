"""The Python API: recaptcha_tf.train returns a run, recaptcha_tf.load a model that predicts any image form."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_class_folders
from PIL import Image

import recaptcha_tf
from recaptcha_tf.tasks import TaskError

TINY = dict(
    epochs=1,
    image_size=(24, 24),
    logdir=None,
    balance_per_class=0,
    model_kwargs=dict(conv_layers=1, filters=4, dense_units=8),
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_load_and_predict_every_image_form(tmp_path):
    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=8)
    run = recaptcha_tf.train(task="tiles", data=data, out=str(tmp_path / "run"), **TINY)
    assert os.path.isfile(os.path.join(run.path, "model.keras")) and run.summary["test"]["n"] > 0
    model = run.load()
    assert model.info.task == "tiles" and "tiles" in repr(model)
    path = os.path.join(data, "bus", sorted(os.listdir(os.path.join(data, "bus")))[0])
    pil = Image.open(path).convert("RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    forms = [path, buffer.getvalue(), np.asarray(pil), pil]
    results = model.predict(forms)
    assert len(results) == 4 and len({r["label"] for r in results}) == 1  # one image, one answer, any form
    assert max(abs(r["confidence"] - results[0]["confidence"]) for r in results) < 1e-5
    assert model.predict(path)["label"] == results[0]["label"]  # one image in, one dict out
    batch = model.predict(np.stack([np.asarray(pil)] * 2))  # a uint8 batch (N, H, W, C): one result a row
    assert [r["label"] for r in batch] == [results[0]["label"]] * 2
    with pytest.raises(TypeError, match="uint8"):
        model.predict(np.zeros((8, 8, 3), np.float32))


def test_options_of_another_task_are_refused_by_name(tmp_path):
    with pytest.raises(TaskError, match="mix: not an option of task 'text'"):
        recaptcha_tf.train(task="text", data=str(tmp_path), mix="mixup")


def test_import_stays_cheap():
    code = "import sys, recaptcha_tf; print('tensorflow' in sys.modules, recaptcha_tf.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and re.fullmatch(r"\d+\.\d+\.\d+", out[1])


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path):
    readme = open(os.path.join(ROOT, "README.md")).read()
    (block,) = re.findall(r"## Python\n\n```python\n(.*?)```", readme, re.S)
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (top1,) = [line for line in result.stdout.splitlines() if line.startswith("test top-1 ")]
    assert float(top1.split()[-1]) >= 0.75  # generated shapes are easy: a working example reads them
    label, confidence = result.stdout.splitlines()[-1].split()
    assert label in ("bus", "crosswalk", "hydrant", "traffic_light") and 0 < float(confidence) <= 1


def test_select_cells_solves_a_grid_with_the_shipped_tile_model(tmp_path):
    from recaptcha_tf.evaluation.challenge import pick_cells, split_grid
    from recaptcha_tf.inference.loading import load_model
    from recaptcha_tf.inference.predictor import predict_outputs
    from recaptcha_tf.utils.shipped import resolve_shipped

    rng = np.random.default_rng(0)
    grid = rng.integers(0, 256, (3 * 60, 3 * 60, 3), dtype=np.uint8)
    grid[:60, :60] = (200, 30, 30)  # a few flat cells, so that the probabilities differ from cell to cell
    grid[60:120, 120:] = (40, 160, 40)
    tiles = recaptcha_tf.load("tiles")
    result = tiles.select_cells(grid, "car")
    assert result["grid"] == "3x3" and result["target"] == "car" and len(result["probabilities"]) == 9
    assert result["rule"] == f"target probability >= {tiles.info.challenge_threshold:g}"

    # the same decision from each cell saved as a file and read through the batch pipeline
    files = []
    for k, cell in enumerate(split_grid(grid, 3, 3)):
        files.append(str(tmp_path / f"cell{k}.png"))
        Image.fromarray(cell).save(files[-1])
    probs = predict_outputs(load_model(str(resolve_shipped("tiles"))), files)
    car = tiles.info.names.index("car")
    assert np.allclose(result["probabilities"], probs[:, car], atol=1e-4)
    assert result["cells"] == [i + 1 for i in pick_cells(probs, car, tiles.info.challenge_threshold)]

    assert tiles.select_cells(grid, "car", grid="4x4")["grid"] == "4x4"
    with pytest.raises(ValueError, match="not one of the model's classes"):
        tiles.select_cells(grid, "boat")
    with pytest.raises(ValueError, match="ROWSxCOLS"):
        tiles.select_cells(grid, "car", grid="three")
