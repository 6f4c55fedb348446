"""`train` ends with one line (where the model is, its headline figure, the next command); --json gives the dict."""

from __future__ import annotations

import json
import os

from conftest import make_class_folders

from recaptcha_tf.cli.main import main

TINY = [
    "--epochs",
    "1",
    "--image-size",
    "24",
    "--logdir",
    "",
    "--balance",
    "0",
    "--model-arg",
    "conv_layers=1",
    "--model-arg",
    "filters=4",
    "--model-arg",
    "dense_units=8",
]


def test_train_ends_with_one_summary_line_or_json(tmp_path, capsys):
    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=8)
    out = str(tmp_path / "run")
    capsys.readouterr()
    assert main(["train", "--task", "tiles", "--data", data, "--out", out, *TINY]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"trained {os.path.join(out, 'model.keras')}: test top1 ")
    assert last.endswith(f"next: recaptcha-tf evaluate --model {out} --data {data}")
    assert main(["train", "--task", "tiles", "--data", data, "--out", out, *TINY, "--json"]) == 0  # finished: kept
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"] == out and summary["epochs_this_session"] == 0 and "top1" in summary["test"]
