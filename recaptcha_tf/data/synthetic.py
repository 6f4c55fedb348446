"""Tiny synthetic class-folder datasets for smoke runs, notebooks and examples.

* :func:`make_tile_folders` writes "tiles": each class is a shape (ellipse,
  rectangle, cross, triangle) in a class colour on a noisy background, in
  ``ROOT/<class>/<nnnn>.png``, the layout of the reCAPTCHA tile data.
* :func:`make_glyph_folders` writes single characters, each in a random bundled
  font, size, rotation and offset, dark on a light noisy background, in
  ``ROOT/<character>/<nnnn>.png`` (grayscale), the layout of the ``chars`` task.

Both are seeded (same arguments, same bytes) and easy to learn, so a one-epoch
run on a few dozen images exercises the whole training and evaluation path in
seconds. They are not a substitute for real data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

DEFAULT_TILE_CLASSES = ("bus", "crosswalk", "hydrant", "traffic_light")
_SHAPES = ("ellipse", "rectangle", "cross", "triangle")
_COLOURS = ((230, 40, 40), (40, 230, 40), (40, 40, 230), (230, 230, 40), (230, 40, 230), (40, 230, 230))


def synthetic_tile(class_index: int, rng: np.random.Generator, size: int = 32):
    """One synthetic tile (a PIL RGB image): the shape and colour of ``class_index`` on noise."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(rng.integers(0, 80, (size, size, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(im)
    colour = _COLOURS[class_index % len(_COLOURS)]
    m = max(1, size // 5)
    jitter = max(1, size // 10)
    x0, y0 = m + int(rng.integers(0, jitter + 1)), m + int(rng.integers(0, jitter + 1))
    x1, y1 = size - m - int(rng.integers(0, jitter + 1)), size - m - int(rng.integers(0, jitter + 1))
    shape = _SHAPES[class_index % len(_SHAPES)]
    if shape == "ellipse":
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif shape == "rectangle":
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    elif shape == "cross":
        width = max(2, size // 8)
        draw.line((x0, y0, x1, y1), fill=colour, width=width)
        draw.line((x0, y1, x1, y0), fill=colour, width=width)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=colour)
    return im


def make_tile_folders(
    root: str,
    classes: Sequence[str] = DEFAULT_TILE_CLASSES,
    per_class: int | Sequence[int] = 20,
    size: int = 32,
    seed: int = 0,
) -> list[str]:
    """Write a synthetic tile dataset ``root/<class>/<nnnn>.png``.

    Args:
        root: output folder (created; existing files of the same names are replaced).
        classes: class folder names.
        per_class: images per class, one number or one per class (an imbalanced
            dataset, e.g. ``[30, 20, 12, 8]``, to show balancing).
        size: side of the square RGB tiles in pixels.
        seed: same arguments and seed give the same files.

    Returns:
        The written paths, class by class.
    """
    counts = [int(per_class)] * len(classes) if np.isscalar(per_class) else [int(n) for n in per_class]
    if len(counts) != len(classes):
        raise ValueError(f"per_class has {len(counts)} counts for {len(classes)} classes.")
    rng = np.random.default_rng(seed)
    paths = []
    for ci, (name, count) in enumerate(zip(classes, counts)):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(count):
            path = os.path.join(root, name, f"{k:04d}.png")
            synthetic_tile(ci, rng, size).save(path, format="PNG")
            paths.append(path)
    return paths


def synthetic_glyph(char: str, rng: np.random.Generator, size: tuple[int, int] = (32, 52), fonts=None):
    """One grayscale glyph image (PIL ``L``) of ``char``; ``size`` is (width, height)."""
    from PIL import Image, ImageDraw

    from recaptcha_tf.data.generator import _load_font, default_fonts

    fonts = fonts or default_fonts()
    width, height = size
    font = _load_font(fonts[int(rng.integers(len(fonts)))], int(height * rng.uniform(0.55, 0.75)))
    background = rng.normal(225, 15, (height, width)).clip(0, 255).astype(np.uint8)
    glyph = Image.new("L", (width * 2, height * 2), 0)
    ImageDraw.Draw(glyph).text((width, height), char, fill=255, font=font, anchor="mm")
    glyph = glyph.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    dx, dy = (int(v) for v in rng.integers(-max(1, width // 10), max(1, width // 10) + 1, 2))
    glyph = glyph.crop((width // 2 - dx, height // 2 - dy, width // 2 - dx + width, height // 2 - dy + height))
    ink = int(rng.integers(0, 90))
    image = Image.fromarray(background)
    image.paste(Image.new("L", (width, height), ink), (0, 0), glyph)
    return image


def make_glyph_folders(
    root: str,
    characters: str = "abcdef0123",
    per_class: int = 20,
    size: tuple[int, int] = (32, 52),
    seed: int = 0,
    fonts: Sequence[str] | None = None,
) -> list[str]:
    """Write a synthetic single-character dataset ``root/<char>/<nnnn>.png`` (grayscale PNG).

    Args:
        characters: one class per character; use lower-case letters and digits only
            (class folders match case-insensitively, so ``a`` and ``A`` would be one class).
        per_class: images per character.
        size: (width, height) in pixels; the ``chars`` task trains at 52x32 (height x width).
        fonts: TrueType files; by default the fonts bundled with matplotlib and ``captcha``.

    Returns:
        The written paths, character by character.
    """
    bad = sorted({c for c in characters if not (c.isdigit() or (c.isalpha() and c.islower()))})
    if bad or len(set(characters)) != len(characters):
        raise ValueError(f"characters must be distinct lower-case letters or digits, got {characters!r}.")
    rng = np.random.default_rng(seed)
    fonts = list(fonts) if fonts else None
    paths = []
    for char in characters:
        os.makedirs(os.path.join(root, char), exist_ok=True)
        for k in range(per_class):
            path = os.path.join(root, char, f"{k:04d}.png")
            synthetic_glyph(char, rng, size, fonts).save(path, format="PNG")
            paths.append(path)
    return paths
