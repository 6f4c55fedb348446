"""The grid tab's answer drawn on the grid: picked cells tinted and outlined, every cell numbered from 1."""

from __future__ import annotations

import numpy as np

from recaptcha_tf.evaluation.challenge import cell_bounds


def draw_overlay(image: np.ndarray, rows: int, cols: int, picked: list[int]) -> np.ndarray:
    """The grid image with picked cells tinted green and outlined, every cell numbered from 1."""
    from PIL import Image, ImageDraw

    base = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    width = max(2, min(base.size) // 100)
    for k, (top, bottom, left, right) in enumerate(cell_bounds(base.size[1], base.size[0], rows, cols)):
        box = (left, top, right - 1, bottom - 1)
        if k in picked:
            draw.rectangle(box, fill=(0, 200, 0, 90), outline=(0, 255, 0, 255), width=width)
        else:
            draw.rectangle(box, outline=(255, 255, 255, 160), width=1)
        draw.text((left + 3, top + 2), str(k + 1), fill=(255, 255, 0, 255))
    return np.asarray(Image.alpha_composite(base, layer).convert("RGB"))
