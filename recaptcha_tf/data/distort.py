"""Whole-image distortions that CAPTCHA designs use to defeat segmentation: a smooth wave warp.

Many real designs bend the text along a wave and squeeze neighbouring glyphs together (the ``captcha`` library
warps each glyph; vendor designs warp the whole line). :func:`wave_warp` bends an image's rows and columns along
random sines, so glyphs that were drawn apart bend and touch the way they do there.
"""

from __future__ import annotations

import numpy as np


def wave_warp(image, rng: np.random.Generator, strength: float = 1.0):
    """``image`` (an RGB ``PIL.Image``) bent along random sines; the same size, edges repeated.

    Rows move up and down with a sine of ``x`` (amplitude up to 10% of the height, one to three waves across the
    width), and columns sideways with a sine of ``y`` (up to 4% of the height); ``strength`` scales both.

    Returns:
        An RGB ``PIL.Image`` of the same size (bilinear resampling).
    """
    from PIL import Image

    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = pixels.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    vertical = strength * rng.uniform(0.02, 0.10) * height
    horizontal = strength * rng.uniform(0.0, 0.04) * height
    waves = rng.uniform(1.0, 3.0)
    dy = vertical * np.sin(2 * np.pi * waves * xs / width + rng.uniform(0, 2 * np.pi))
    dx = horizontal * np.sin(2 * np.pi * ys / max(height, 1) * rng.uniform(0.5, 1.5) + rng.uniform(0, 2 * np.pi))
    sy = np.clip(ys + dy, 0, height - 1)
    sx = np.clip(xs + dx, 0, width - 1)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
    top = pixels[y0, x0] * (1 - fx) + pixels[y0, x1] * fx
    bottom = pixels[y1, x0] * (1 - fx) + pixels[y1, x1] * fx
    return Image.fromarray(np.clip(top * (1 - fy) + bottom * fy + 0.5, 0, 255).astype(np.uint8))
