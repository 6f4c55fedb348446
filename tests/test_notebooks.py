"""The notebooks in notebooks/: committed clean, with defaults a fresh clone has, and runnable with papermill.

Each notebook runs top to bottom in SMOKE mode (tiny generated data; 06: the shipped models on the committed samples)
from ``notebooks/`` with ``WORK`` in a temporary folder; 01 and 04 also run on their defaults (the committed
``samples/``, one epoch) from a copy of ``notebooks/`` and ``samples/`` alone, as in a fresh clone with nothing beside
it. The kernel is this interpreter (a kernel spec written to a temporary Jupyter path and pointing at
``sys.executable``), so the tests use the same virtualenv as the suite even when ``.venv/bin`` is not on ``PATH``
(``make test``). The tests check that no cell failed or warned of a deprecated import, that figures were displayed,
and that the runs wrote their models and reports.
"""

from __future__ import annotations

import ast
import json
import os
import shutil

import nbformat
import pytest

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
NAMES = [
    "01_tiles_cnn_balancing.ipynb",
    "02_hparam_grid_search.ipynb",
    "03_transfer_and_vit.ipynb",
    "04_text_captcha.ipynb",
    "05_character_classifier.ipynb",
    "06_shipped_models.ipynb",
]
KERNEL = "recaptcha-tf-notebook-tests"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A Jupyter kernel spec for ``sys.executable``, first on ``JUPYTER_PATH`` for this module's tests."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as mp:
        jupyter_path = os.path.join(str(prefix), "share", "jupyter")
        mp.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [jupyter_path, os.environ.get("JUPYTER_PATH")])))
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        mp.setenv("CUDA_VISIBLE_DEVICES", "-1")
        yield KERNEL


def run_notebook(name: str, work: str, kernel: str, **parameters) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>`` in SMOKE mode from the notebooks folder; returns the executed notebook."""
    import papermill

    before = sorted(os.listdir(NOTEBOOKS))
    nb = papermill.execute_notebook(
        os.path.join(NOTEBOOKS, name),
        os.path.join(work, "executed_" + name),
        parameters={"SMOKE": True, "WORK": os.path.join(work, "work"), **parameters},
        kernel_name=kernel,
        cwd=NOTEBOOKS,
        progress_bar=False,
        execution_timeout=300,
    )
    assert sorted(os.listdir(NOTEBOOKS)) == before, "the notebook wrote outside WORK"
    return nb


def outputs(nb, output_type=None):
    return [
        o
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if output_type is None or o.get("output_type") == output_type
    ]


IMAGE_TYPES = ("image/png", "image/jpeg")  # committed runs keep photo grids as JPEG (tools/compact_notebook.py)


def images(nb) -> int:
    return sum(any(t in o.get("data", {}) for t in IMAGE_TYPES) for o in outputs(nb))


def check_clean_run(nb, figures: int) -> None:
    """No cell failed, and exactly ``figures`` figures were shown (each once, none as ``<Figure ...>`` text)."""
    errors = outputs(nb, "error")
    assert not errors, f"cell errors: {[(e['ename'], e['evalue']) for e in errors]}"
    stderr = "".join(o.get("text", "") for o in outputs(nb, "stream") if o.get("name") == "stderr")
    assert "Traceback" not in stderr
    assert "FutureWarning" not in stderr, "a notebook imports a deprecated path"
    assert images(nb) == figures, f"{images(nb)} figures displayed, expected {figures}"
    assert not any(
        "<Figure size" in o.get("data", {}).get("text/plain", "")
        and not any(t in o.get("data", {}) for t in IMAGE_TYPES)
        for o in outputs(nb)
    )


def load_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


MAX_NOTEBOOK_BYTES = 200_000  # committed without outputs
REPO_URL = "https://github.com/recaptcha-tf/recaptcha_tf"
# What a fresh clone lacks, what was a placeholder, and the deprecated workflow module (tests/test_deprecated_paths.py)
FORBIDDEN = ("../../shared", "OWNER", "recaptcha_tf.runs", "from recaptcha_tf import runs", "import plots, runs")


def notebook(name):
    return nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)


def parameter_defaults(nb) -> dict:
    """The literal values the `parameters` cell assigns."""
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
    }


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean_and_parameterised(name):
    """Committed without outputs, small, with the Colab install cell first (one REPO_URL, skipped when the package
    imports) and a papermill `parameters` cell with DATA/WEIGHTS, WORK, EPOCHS, SMOKE = False."""
    nb = notebook(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in code)
    install = code[0].source
    assert "import recaptcha_tf" in install and "except ImportError:" in install and "%pip install" in install
    assert install.count(f'REPO_URL = "{REPO_URL}"') == 1 and "{REPO_URL}" in install
    assert f"colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/main/notebooks/{name}" in (
        nb.cells[0].source
    )
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for key in ("WORK", "EPOCHS", "SMOKE = False"):
        assert key in params[0].source
    assert "DATA" in params[0].source or "WEIGHTS" in params[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3" and "papermill" not in nb.metadata
    assert os.path.getsize(os.path.join(NOTEBOOKS, name)) < MAX_NOTEBOOK_BYTES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_defaults_are_in_a_fresh_clone(name):
    """No `../../shared` default, no `OWNER` placeholder, no `recaptcha_tf.runs`; every default data path is a
    committed sample (relative to notebooks/), data the notebook generates (None), or ImageNet weights with a
    no-network fallback; EPOCHS defaults to the command line's (None)."""
    nb = notebook(name)
    source = "\n".join(c.source for c in nb.cells)
    for text in FORBIDDEN:
        assert text not in source, f"{name} contains {text!r}"
    defaults = parameter_defaults(nb)
    assert defaults["EPOCHS"] is None and defaults["SMOKE"] is False
    if defaults.get("DATA") is not None:
        assert defaults["DATA"].startswith("../samples/"), defaults["DATA"]
        assert os.path.isdir(os.path.join(NOTEBOOKS, defaults["DATA"])), defaults["DATA"]
    if "WEIGHTS" in defaults:
        assert defaults["WEIGHTS"] in (None, "imagenet") and "WeightsError" in source


def test_notebooks_readme_has_no_placeholder_or_shared_default():
    with open(os.path.join(NOTEBOOKS, "README.md")) as f:
        text = f.read()
    assert "OWNER" not in text and "../../shared" not in text and "runs.train" not in text


def fresh_clone(tmp_path) -> str:
    """A copy of notebooks/ and samples/ alone (no ../shared beside it, nothing the tests wrote); its notebooks/."""
    clone = tmp_path / "clone"
    for folder in ("notebooks", "samples"):
        shutil.copytree(os.path.join(ROOT, folder), clone / folder, ignore=shutil.ignore_patterns("notebook_runs"))
    assert not (tmp_path / "shared").exists() and not (clone.parent.parent / "shared").exists()
    return str(clone / "notebooks")


@pytest.mark.parametrize(("name", "runs"), [(NAMES[0], ["cnn"]), (NAMES[3], ["crnn", "multihead"])])
def test_notebook_runs_on_its_defaults_from_a_fresh_clone(tmp_path, kernel_name, name, runs):
    """01 and 04 top to bottom on their defaults (the committed samples), one epoch, from a copy of the repository's
    notebooks/ and samples/ with nothing beside it."""
    import papermill

    folder = fresh_clone(tmp_path)
    nb = papermill.execute_notebook(
        os.path.join(folder, name),
        str(tmp_path / ("executed_" + name)),
        parameters={"EPOCHS": 1},
        kernel_name=kernel_name,
        cwd=folder,
        progress_bar=False,
        execution_timeout=300,
    )
    check_clean_run(nb, figures=images(nb))
    assert images(nb) >= 3
    work = os.path.join(folder, parameter_defaults(notebook(name))["WORK"])
    for run in runs:
        config = load_json(work, run, "config.json")
        samples = os.path.realpath(os.path.join(folder, os.pardir, "samples"))
        assert os.path.realpath(os.path.join(folder, config["data"])).startswith(samples)
        assert os.path.isfile(os.path.join(work, run, "model.keras"))
        assert "n" in load_json(work, run, "test_report.json")


def test_01_tiles_cnn_balancing(tmp_path, kernel_name):
    nb = run_notebook(NAMES[0], str(tmp_path), kernel_name)
    check_clean_run(nb, figures=9)
    work = tmp_path / "work"
    assert (work / "cnn" / "model.keras").is_file()
    report = load_json(work, "cnn", "test_report.json")
    assert {"n", "top1", "top3", "macro_f1", "balanced_accuracy", "confusion_matrix", "per_class"} <= set(report)
    assert report["class_names"] == ["bus", "crosswalk", "hydrant", "traffic_light"]
    # the training split was balanced to PER_CLASS (20) images per class; val/test were not touched
    balanced = load_json(work, "balanced_images", "split.json")
    per_class = [sum(1 for _, label in balanced["train"] if label == k) for k in range(4)]
    assert per_class == [20, 20, 20, 20]
    assert all(not os.path.basename(p).startswith("aug_") for p, _ in balanced["val"] + balanced["test"])
    assert load_json(work, "cnn", "evaluation.json")["subset"] == "test"


def test_02_hparam_grid_search(tmp_path, kernel_name):
    nb = run_notebook(NAMES[1], str(tmp_path), kernel_name)
    check_clean_run(nb, figures=2)
    work = tmp_path / "work"
    for name in ("opt-grid", "arch-grid"):
        summary = load_json(work, name, "summary.json")
        assert summary["completed"] == summary["trials"] == summary["grid_size"] == 2
        assert "hyperparameters" in summary["best"] and "macro_f1" in summary["test"]
        assert (work / name / "model.keras").is_file() and (work / name / "results.csv").is_file()
        trials = [d for d in os.listdir(work / "logs" / "tune" / name) if d.startswith("trial_")]
        assert len(trials) == 2  # one HParams session per trial
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "tensorboard --logdir" in text and "HParams" in text


def test_03_transfer_and_vit(tmp_path, kernel_name):
    nb = run_notebook(NAMES[2], str(tmp_path), kernel_name)
    check_clean_run(nb, figures=2)
    work = tmp_path / "work"
    config = load_json(work, "mobilenetv2", "config.json")
    # the tiny backbone's weights went through the same weights=PATH argument as the ImageNet file
    assert config["weights"].endswith(".weights.h5") and os.path.isfile(config["weights"])
    assert config["freeze_epochs"] == 1 and (work / "mobilenetv2" / "phase1.weights.h5").is_file()
    for run in ("mobilenetv2", "vit-tiny"):
        report = load_json(work, run, "test_report.json")
        assert {"top1", "macro_f1", "challenge"} <= set(report)
        assert {"3x3", "4x4"} <= set(report["challenge"])
    multi = load_json(work, "multi_label", "test_report.json")
    assert {"hamming_accuracy", "subset_accuracy", "macro_f1"} <= set(multi)
    assert load_json(work, "multi_label", "config.json")["multi_label"] is True


def test_04_text_captcha(tmp_path, kernel_name):
    nb = run_notebook(NAMES[3], str(tmp_path), kernel_name)
    check_clean_run(nb, figures=3)
    work = tmp_path / "work"
    assert len([f for f in os.listdir(work / "data") if f.endswith(".png")]) == 60
    for run in ("crnn", "multihead"):
        assert (work / run / "model.keras").is_file()
        report = load_json(work, run, "test_report.json")
        assert {"n", "exact_match", "cer", "worst", "confusions"} <= set(report)
    assert (work / "crnn" / "evaluation_predictions.png").is_file()


def test_05_character_classifier(tmp_path, kernel_name):
    nb = run_notebook(NAMES[4], str(tmp_path), kernel_name)
    check_clean_run(nb, figures=5)
    work = tmp_path / "work"
    config = load_json(work, "resnet18", "config.json")
    assert config["model"] == "resnet18" and config["channels"] == 1 and config["task"] == "chars"
    report = load_json(work, "resnet18", "test_report.json")
    assert {"top1", "macro_f1", "confusion_matrix"} <= set(report) and len(report["class_names"]) == 6


def test_06_shipped_models(tmp_path, kernel_name):
    """The shipped models of the package's pretrained folder (or ``$RECAPTCHA_TF_PRETRAINED_DIR``'s) on the
    committed samples: the tiles report with its calibration, the universal reader's readings, and a 20-step
    fine-tune from it, scored before and after on the run's test split."""
    from recaptcha_tf.data.text.task_data import text_split_names
    from recaptcha_tf.utils.shipped import resolve_shipped

    nb = run_notebook(NAMES[5], str(tmp_path), kernel_name)
    check_clean_run(nb, figures=4)
    work = tmp_path / "work"
    tiles = load_json(work, "tiles_report.json")
    assert tiles["subset"] == "all" and tiles["n"] == 240 and 0 <= tiles["top1"] <= 1
    calibration = tiles["calibration"]
    assert {"ece", "background_false_positive_rate", "reliability"} <= set(calibration)
    # a model with an `other` class stores a threshold, and the report scores it abstaining
    assert "other" in tiles["class_names"] and isinstance(calibration["min_confidence"], float)
    assert 0 <= calibration["abstaining"]["top1"] <= 1 and 0 <= calibration["ece"] <= 1
    assert (work / "tiles_report_reliability.png").is_file()
    run = work / "from_universal"
    assert (run / "model.keras").is_file()
    config = load_json(run, "config.json")
    assert os.path.samefile(config["weights"], resolve_shipped("universal"))
    assert config["steps_per_epoch"] * config["epochs"] == 20  # SMOKE's steps, not the CLI's budget
    test = text_split_names(str(run / "split.json"), "test")
    for name in ("zero_shot_report.json", "fine_tuned_report.json"):
        report = load_json(work, name)
        assert report["n"] == len(test) > 0 and report["case"] == "lower"
        assert isinstance(report["exact_match"], float) and 0 <= report["exact_match"] <= 1
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "training split" in text and "MODEL_CARD.md" in text  # the honest figures are the card's


def test_compact_notebook_reencodes_only_large_figures_as_jpeg(tmp_path):
    """tools/compact_notebook.py: a large PNG output becomes a smaller, downscaled JPEG; a small one stays PNG."""
    import base64
    import importlib.util
    import io

    import numpy as np
    from PIL import Image

    spec = importlib.util.spec_from_file_location(
        "compact_notebook", os.path.join(NOTEBOOKS, os.pardir, "tools", "compact_notebook.py")
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    def png(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    rng = np.random.default_rng(0)
    large = png(rng.integers(0, 256, (400, 1600, 3), dtype=np.uint8))  # noise: about 1.9 MB as PNG
    small = png(np.zeros((50, 50, 3), dtype=np.uint8))
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "plot()",
        execution_count=1,
        outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": large, "text/plain": "<Figure>"}),
            nbformat.v4.new_output("display_data", data={"image/png": small, "text/plain": "<Figure>"}),
        ],
    )
    nb.cells.append(cell)
    path = str(tmp_path / "nb.ipynb")
    nbformat.write(nb, path)

    before, after = tool.compact(path, min_kb=120, max_width=800)
    assert after < before / 2
    out = nbformat.read(path, as_version=4).cells[0].outputs
    assert set(out[0].data) == {"image/jpeg", "text/plain"}
    assert Image.open(io.BytesIO(base64.b64decode(out[0].data["image/jpeg"]))).size == (800, 200)
    assert out[1].data["image/png"] == small
