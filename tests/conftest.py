"""Shared fixtures: tiny image datasets generated on the fly (tests never read ../shared)."""

from __future__ import annotations

import csv
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np
import pytest
from PIL import Image, ImageDraw

KAGGLE_NAMES = {"bus": "Bus", "traffic_light": "Traffic Light", "hydrant": "Hydrant"}
SHAPES = ("ellipse", "rectangle", "cross")


def tile_image(class_index: int, rng: np.random.Generator, size: int = 24, mode: str = "RGB") -> Image.Image:
    """A learnable synthetic 'tile': class = shape drawn in a class colour on a noisy background."""
    bg = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    im = Image.fromarray(bg)
    draw = ImageDraw.Draw(im)
    colour = [(230, 40, 40), (40, 230, 40), (40, 40, 230), (230, 230, 40)][class_index % 4]
    m = size // 5
    box = (m + int(rng.integers(0, 3)), m + int(rng.integers(0, 3)), size - m, size - m)
    shape = SHAPES[class_index % len(SHAPES)]
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    elif shape == "rectangle":
        draw.rectangle(box, fill=colour)
    else:
        draw.line((box[0], box[1], box[2], box[3]), fill=colour, width=max(2, size // 8))
        draw.line((box[0], box[3], box[2], box[1]), fill=colour, width=max(2, size // 8))
    return im.convert(mode) if mode != "RGB" else im


def make_class_folders(
    root,
    classes=("bus", "hydrant", "traffic_light"),
    per_class=12,
    layout="tidy",
    seed=0,
    sizes=(24,),
    modes=("RGB",),
    ext=".png",
):
    """Write ``root/<class>/<n>.png`` (tidy) or ``root/Traffic Light/Tlight (3).png`` (kaggle)."""
    rng = np.random.default_rng(seed)
    paths = []
    for ci, name in enumerate(classes):
        folder = KAGGLE_NAMES.get(name, name.title()) if layout == "kaggle" else name
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for k in range(per_class):
            size = sizes[k % len(sizes)]
            mode = modes[k % len(modes)]
            im = tile_image(ci, rng, size, "RGB")
            fname = f"{folder} ({k + 1}){ext}" if layout == "kaggle" else f"{k:04d}{ext}"
            path = os.path.join(root, folder, fname)
            if mode == "I;16":
                arr = np.asarray(im.convert("L"), dtype=np.uint16) * 257
                Image.fromarray(arr).save(path, format="PNG")
            else:
                im.convert(mode).save(path, format="PNG" if ext == ".png" else "JPEG")
            paths.append(path)
    return paths


@pytest.fixture
def tiles_dir(tmp_path):
    root = tmp_path / "tiles"
    make_class_folders(str(root), per_class=14)
    return str(root)


def train_tiny_classifier(root, sizes=(24,)):
    """A one-epoch tile CNN on 3 tiny classes; returns ``(run folder, data folder)``."""
    from recaptcha_tf.training.classifier import train_classifier

    data = os.path.join(str(root), "tiles")
    make_class_folders(data, per_class=8, sizes=sizes)
    out = os.path.join(str(root), "run")
    train_classifier(
        data,
        out,
        image_size=(24, 24),
        epochs=1,
        logdir=None,
        model_kwargs=dict(conv_layers=1, filters=4, dense_units=8),
    )
    return out, data


def train_tiny_crnn(root, count, charset="abc"):
    """A one-epoch CRNN on ``count`` generated 3-4 character CAPTCHAs; returns ``(run folder, data folder)``."""
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.training.text import train_text

    data = os.path.join(str(root), "captchas")
    generate_captchas(data, count=count, length=(3, 4), charset=charset, size=(96, 32), seed=0)
    out = os.path.join(str(root), "run")
    train_text(
        data,
        out,
        model="crnn",
        charset=charset,
        image_size=(32, 64),
        epochs=1,
        batch_size=16,
        logdir=None,
        model_kwargs={"rnn_units": 8, "filters": [4, 4, 8, 8]},
    )
    return out, data


def tiny_ink_crnn(crop, region=None, size=(32, 64), augmentation=None):
    """An untrained, tiny CRNN over characters ``ab`` that reads raw RGB through the ink map, cut to ``crop``
    (and to each image's own text inside a ``region`` when given; ``augmentation`` runs on the network's input)."""
    from recaptcha_tf.models import build_text_model

    return build_text_model(
        "crnn",
        "ab",
        size,
        channels=3,
        resize="stretch",
        max_length=3,
        colour="ink",
        crop=crop,
        region=region,
        augmentation=augmentation,
        filters=(4, 4, 8, 8),
        rnn_units=4,
    )


def logged_epochs(out):
    """The epochs a run's ``history.csv`` records, in order."""
    with open(os.path.join(out, "history.csv")) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def parquet_of_labels(path, labels):
    """A Parquet file of tiny PNGs with these ``labels`` (image and text columns); returns ``path``."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    blobs = []
    for i, _ in enumerate(labels):
        buf = io.BytesIO()
        Image.new("RGB", (24, 12), (i * 40, 0, 0)).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary()), "text": pa.array(labels)}), path)
    return path


def fake_png_bomb(width=20000, height=20000) -> bytes:
    """A PNG header declaring ``width x height`` (a decompression bomb's calling card) with a tiny body."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )
