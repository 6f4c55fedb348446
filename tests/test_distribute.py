"""tf.distribute: strategy choice, replica scaling, and a real two-worker MultiWorkerMirroredStrategy run."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_class_folders

from recaptcha_tf.inference.loading import load_model
from recaptcha_tf.training.distribute import get_strategy, scale_for_replicas

pytestmark = pytest.mark.slow  # trains, converts, or starts servers, notebooks or processes


def test_strategy_choice_and_scaling(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert get_strategy("default") is tf.distribute.get_strategy()
    assert get_strategy("auto").num_replicas_in_sync == 1  # no GPUs, no TPU, no cluster here
    assert scale_for_replicas(32, 1e-3, 4) == (128, 4e-3)
    assert scale_for_replicas(32, 1e-3, 1) == (32, 1e-3)
    with pytest.raises(ValueError, match="Unknown strategy"):
        get_strategy("horovod")
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        get_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        get_strategy("auto")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_train_to_the_same_weights(tmp_path):
    data = str(tmp_path / "tiles")
    make_class_folders(data, per_class=8)
    out = str(tmp_path / "run")
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    command = [
        sys.executable,
        "-m",
        "recaptcha_tf",
        "train",
        "--task",
        "tiles",
        "--data",
        data,
        "--out",
        out,
        "--strategy",
        "multiworker",
        "--epochs",
        "2",
        "--image-size",
        "24",
        "--batch-size",
        "4",
        "--learning-rate",
        "1e-3",
        "--logdir",
        "",
        "--precision",
        "float32",
        "--model-arg",
        "conv_layers=2",
        "--model-arg",
        "filters=4",
        "--model-arg",
        "dense_units=8",
    ]
    procs = []
    for index in range(2):
        env = dict(
            os.environ,
            CUDA_VISIBLE_DEVICES="-1",
            TF_CPP_MIN_LOG_LEVEL="2",
            TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
        )
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text[-3000:]

    chief_dir, worker_dir = out, os.path.join(out, "worker1")
    config = json.load(open(os.path.join(chief_dir, "config.json")))
    assert config["strategy"] == "CollectiveAllReduceStrategy" and config["replicas"] == 2  # = MultiWorkerMirrored
    assert config["batch_size"] == 8 and config["learning_rate"] == pytest.approx(2e-3)  # scaled with replicas
    assert os.path.exists(os.path.join(chief_dir, "test_report.json"))  # only the chief evaluates
    assert not os.path.exists(os.path.join(worker_dir, "test_report.json"))
    chief, worker = load_model(chief_dir), load_model(worker_dir)
    assert len(chief.weights) == len(worker.weights)
    for a, b in zip(chief.weights, worker.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6)
    with open(os.path.join(chief_dir, "history.csv")) as f:
        assert len(f.read().strip().splitlines()) == 3  # header + 2 epochs
