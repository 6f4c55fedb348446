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
