"""samples/: the small committed data the notebooks and the demo default to (5 MB at most, every folder's source
and licence in samples/README.md, rebuilt by tools/make_samples.py)."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
SAMPLES = os.path.join(ROOT, "samples")
MAX_BYTES = 5_000_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def files(folder):
    return sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names)


def readme() -> str:
    with open(os.path.join(SAMPLES, "README.md")) as f:
        return f.read()


def make_samples_tool():
    spec = importlib.util.spec_from_file_location("make_samples", os.path.join(ROOT, "tools", "make_samples.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_samples_are_at_most_5_mb():
    total = sum(os.path.getsize(path) for path in files(SAMPLES))
    assert 0 < total <= MAX_BYTES, f"samples/ holds {total / 1e6:.2f} MB"


@pytest.mark.parametrize("folder", sorted(os.listdir(SAMPLES)) if os.path.isdir(SAMPLES) else [])
def test_every_sample_folder_has_its_source_and_licence_in_the_readme(folder):
    if not os.path.isdir(os.path.join(SAMPLES, folder)):
        return  # README.md
    rows = [line for line in readme().splitlines() if line.startswith(f"| `{folder}/")]
    assert len(rows) == 1, f"samples/README.md has no table row for {folder}/"
    row = rows[0].lower()
    assert "mit" in row and "licen" in row
    licence = re.search(r"\]\(([^)]*license)\)", rows[0], re.IGNORECASE)
    assert licence, f"the {folder}/ row links no LICENSE file"
    assert os.path.isfile(os.path.join(SAMPLES, licence.group(1)))
    if "generated" not in row:  # third-party images keep their licence text beside them
        assert os.path.isfile(os.path.join(SAMPLES, folder, "LICENSE"))
        with open(os.path.join(SAMPLES, folder, "LICENSE")) as f:
            assert "Permission is hereby granted, free of charge" in f.read()


@pytest.mark.parametrize(("folder", "classes", "least"), [("tiles", 12, 15), ("digits", 10, 20)])
def test_class_folder_samples_are_readable_images(folder, classes, least):
    root = os.path.join(SAMPLES, folder)
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    assert len(names) == classes
    for name in names:
        images = [p for p in files(os.path.join(root, name)) if p.lower().endswith(IMAGE_EXTENSIONS)]
        assert len(images) >= least, (name, len(images))
        for path in images:
            with Image.open(path) as image:
                image.verify()


def test_text_samples_are_named_by_label_and_their_command_is_documented():
    names = [f for f in os.listdir(os.path.join(SAMPLES, "text")) if f.endswith(".png")]
    assert len(names) >= 50
    assert all(re.fullmatch(r"[a-z0-9]{4,6}\.png", name) for name in names)
    for name in names[:5]:
        with Image.open(os.path.join(SAMPLES, "text", name)) as image:
            assert image.size == (200, 50)
    command = " ".join(["recaptcha-tf", *make_samples_tool().TEXT_COMMAND]).replace("{count}", str(len(names)))
    assert command + " --out samples/text" in readme()
    assert "tools/make_samples.py" in readme()
