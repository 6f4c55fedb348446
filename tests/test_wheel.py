"""The built wheel (not the editable checkout) ships the pretrained folder, and `read` runs from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import train_tiny_crnn

pytestmark = pytest.mark.slow  # builds a wheel and starts processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_installed_wheel_reads_a_generated_captcha(tmp_path):
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.utils.shipped import write_manifest_entry

    source = tmp_path / "source"  # a copy of the tracked files: the build writes nothing into the checkout
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if os.path.isfile(os.path.join(ROOT, name)) and not name.startswith(("samples/", "notebooks/", "docs/")):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            shutil.copy(os.path.join(ROOT, name), source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)], check=True,
        timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("recaptcha_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    manifest = json.loads(zipfile.ZipFile(wheel).read("recaptcha_tf/pretrained/manifest.json"))
    for entry in manifest.values():  # every shipped model and card is in the wheel
        assert (
            f"recaptcha_tf/pretrained/{entry['file']}" in names and f"recaptcha_tf/pretrained/{entry['card']}" in names
        )
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=600)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if "universal" not in manifest:  # until the universal reader ships: a tiny one, the same code path
        run, _ = train_tiny_crnn(tmp_path / "reader", count=24)
        pretrained = tmp_path / "pretrained"
        (pretrained / "universal").mkdir(parents=True)
        shutil.copy(os.path.join(run, "model.keras"), pretrained / "universal" / "model.keras")
        (pretrained / "universal" / "MODEL_CARD.md").write_text("# tiny\n")
        write_manifest_entry("universal", pretrained / "universal" / "model.keras", task="text", folder=pretrained)
        env["RECAPTCHA_TF_PRETRAINED_DIR"] = str(pretrained)
    images = tmp_path / "images"
    generate_captchas(str(images), count=1, length=(3, 3), charset="abc", size=(96, 32), seed=1)
    image = str(next(images.iterdir()))
    where = subprocess.run(
        [sys.executable, "-c", "import recaptcha_tf; print(recaptcha_tf.__file__)"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(str(target))  # the wheel's copy, not the checkout
    result = subprocess.run(
        [sys.executable, "-m", "recaptcha_tf", "read", image, "--json"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout.splitlines()[-1])
    assert row["image"] == image and isinstance(row["text"], str) and 0 <= row["text_confidence"] <= 1
