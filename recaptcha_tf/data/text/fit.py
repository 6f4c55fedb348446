"""Fit a text model's input to a training set: geometry, crop and colour handling.

A researcher's own CAPTCHA set may be 200x50 or 630x80, dark-on-light or
light-on-dark, in one colour or many, RGBA on a transparent background, or a
small line of text on a large canvas. :func:`fit_text_input` looks at a seeded
sample of the *training* images and chooses:

* **colour**: ``"ink"``, the one-channel distance of every pixel from its
  image's background colour (:class:`~recaptcha_tf.layers.InkMap`). It reads
  every polarity and text colour the same way; transparent images are
  composited on a contrasting plain background when decoded
  (:func:`~recaptcha_tf.data.images.decode_image`).
* **crop**: when the glyphs of (nearly) every image sit inside one part of the
  canvas, under half of its area, that part with a margin, as fractions
  ``(top, left, bottom, right)``; else none. When, inside that part, each
  image's text fills under 3/4 of its height or width (the text moves from
  image to image), the model also cuts out every image's own text
  (:class:`~recaptcha_tf.layers.ContentCrop`) from that part resized to a
  ``region`` large enough for the text to reach the input size.
* **input size**: height 48 px; the width follows the 75th percentile of the
  content's aspect ratio, and is at least ``20 px`` per character of the
  longest label (the CTC sequence then has ``width / 4`` frames, more than the
  ``2 * length + 1`` that repeated characters need), at most 256 px. When that
  48 px input would give the longest label's characters under ``26 px`` of
  width each (long labels: 8 characters in a 4:1 image get 24 px), the input is
  64 px high instead, its width again following the aspect ratio: the same
  text at 4/3 the resolution. (Measured on 7-8 characters at 280x70: five
  48 px runs read 0.858-0.907 exact match, three at 64x256 0.920-0.947; on 6
  characters at 200x80, 48x128 read 0.964 and 0.991, 64x160 0.969; on 7-8
  characters at 7,500 images, 64x256 read 0.938 and 0.951, 48x192 0.948 on
  the same machine and 0.950 on a faster one: neutral. Sets with 28 px per
  character or more, such as captcha-v2 at 38 px or 4 digits at 70x30, keep
  48 px.)

The choices are printed and recorded in the run's ``config.json``; the saved
model carries them in its layers, so ``predict`` and ``export`` need nothing more.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from recaptcha_tf.data.images import CorruptImageError, load_image_array

log = logging.getLogger("recaptcha_tf")

TEXT_HEIGHT = 48
TALL_TEXT_HEIGHT = 64  # for long labels whose characters would be narrow at TEXT_HEIGHT
MIN_WIDTH, MAX_WIDTH = 64, 256
PIXELS_PER_CHARACTER = 20  # the least input width per character of the longest label
TALL_BELOW_PIXELS_PER_CHARACTER = 26  # characters narrower than this at TEXT_HEIGHT: use TALL_TEXT_HEIGHT
CROP_IF_AREA_BELOW = 0.5  # crop only when the content box is under half of the canvas
# Inside that crop, each image's own text is cut out (ContentCrop) when the text fills less than this share of the
# crop box's height or width: it moves from image to image, or the box holds text of different sizes.
CONTENT_CROP_BELOW = 0.75
CONTENT_MARGIN_Y, CONTENT_MARGIN_X = 0.15, 0.04  # ContentCrop's margins, as shares of the text box
MAX_REGION_SCALE = 4.0  # the crop box is resized to at most 4x the network input before the per-image crop
SAMPLE = 256


@dataclasses.dataclass
class TextInputFit:
    """What :func:`fit_text_input` chose, with the measurements behind it."""

    image_size: tuple[int, int]  # (height, width) in pixels, the network's input
    crop: tuple[float, float, float, float] | None  # (top, left, bottom, right) fractions, or None
    colour: str  # "ink" or "gray"
    resize: str  # "stretch" (ink) or "pad" (gray)
    stats: dict
    # (height, width) the crop box is resized to before each image's own text is cut out and resized to
    # image_size (recaptcha_tf.layers.ContentCrop); None: no per-image crop
    region: tuple[int, int] | None = None

    def canvas_size(self) -> tuple[int, int]:
        """The ``(height, width)`` the pipeline decodes images to: the crop box then has the size the model needs."""
        inner = self.region or self.image_size
        if self.crop is None:
            return tuple(inner)
        top, left, bottom, right = self.crop
        return round(inner[0] / (bottom - top)), round(inner[1] / (right - left))

    def describe(self) -> str:
        """One line for the log: the choices and why."""
        s = self.stats
        crop = "none" if self.crop is None else "(" + ", ".join(f"{v:.2f}" for v in self.crop) + ")"
        if self.region is not None:
            crop += f" then each image's text (crop box at {self.region[0]}x{self.region[1]})"
        return (
            f"text input fitted to {s['sampled']} training images: {self.image_size[0]}x{self.image_size[1]} "
            f"(content aspect p75 {s['aspect_p75']:.2f}, labels up to {s['max_length']} characters), "
            f"crop {crop}, colour {self.colour} (light backgrounds {s['light_background']:.0%}, "
            f"coloured text {s['coloured_text']:.0%}, transparent {s['transparent']:.0%})"
        )

    def to_config(self) -> dict:
        return {
            "image_size": list(self.image_size),
            "crop": None if self.crop is None else list(self.crop),
            "content_region": None if self.region is None else list(self.region),
            "colour": self.colour,
            "resize": self.resize,
            "fit_stats": self.stats,
        }


def image_statistics(image: np.ndarray) -> dict:
    """Measurements of one decoded ``uint8`` RGB image ``(H, W, 3)``.

    ``box`` is the content (ink) box as fractions ``(top, left, bottom, right)``: the
    1st-99th percentiles of the rows and columns of pixels that differ from the
    background colour (median of the border) by more than a third of the image's
    strong differences. ``background`` is the background's brightness (0-255),
    ``colour_spread`` the mean channel spread (max - min) of the ink pixels.
    """
    pixels = image.astype(np.float32)
    border = np.concatenate(
        [
            pixels[:2].reshape(-1, 3),
            pixels[-2:].reshape(-1, 3),
            pixels[:, :2].reshape(-1, 3),
            pixels[:, -2:].reshape(-1, 3),
        ]
    )
    background = np.median(border, axis=0)
    distance = np.sqrt(np.mean((pixels - background) ** 2, axis=-1))
    threshold = max(20.0, np.percentile(distance, 99) / 3)
    ys, xs = np.nonzero(distance > threshold)
    height, width = distance.shape
    if len(ys) < 4:
        box = (0.0, 0.0, 1.0, 1.0)
        spread = 0.0
    else:
        box = (
            np.percentile(ys, 1) / height,
            np.percentile(xs, 1) / width,
            (np.percentile(ys, 99) + 1) / height,
            (np.percentile(xs, 99) + 1) / width,
        )
        ink = pixels[ys, xs]
        spread = float(np.mean(ink.max(-1) - ink.min(-1)))
    return {
        "height": height,
        "width": width,
        "box": tuple(float(v) for v in box),
        "background": float(background.mean()),
        "colour_spread": spread,
    }


def _has_transparency(source) -> bool:
    import io

    from PIL import Image

    try:
        with Image.open(source if isinstance(source, str) else io.BytesIO(bytes(source))) as im:
            return im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    except Exception:  # noqa: BLE001  PIL raises many types for junk input; unreadable files are skipped elsewhere
        return False


def fit_text_input(
    sources: Sequence, max_length: int, height: int | None = None, sample: int = SAMPLE, seed: int = 0
) -> TextInputFit:
    """Choose the input size, crop and colour handling for a text set (see the module docstring).

    Args:
        sources: the training images (paths or encoded bytes).
        max_length: the longest label, in characters.
        height: input height in pixels; ``None``: 48, or 64 for long labels whose characters would be under
            26 px wide at 48 px (see the module docstring).
        sample: how many images (seeded) to measure.
    """
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(sources), size=min(sample, len(sources)), replace=False)
    measured, transparent = [], 0
    for i in picked:
        try:
            measured.append(image_statistics(load_image_array(sources[i], 3)))
        except CorruptImageError:
            continue
        transparent += _has_transparency(sources[i])
    if not measured:
        raise CorruptImageError("None of the sampled training images could be read.")
    boxes = np.array([m["box"] for m in measured])
    top, left = np.percentile(boxes[:, 0], 1), np.percentile(boxes[:, 1], 1)
    bottom, right = np.percentile(boxes[:, 2], 99), np.percentile(boxes[:, 3], 99)
    margin_y, margin_x = 0.2 * (bottom - top), 0.05 * (right - left)
    box = (max(0.0, top - margin_y), max(0.0, left - margin_x), min(1.0, bottom + margin_y), min(1.0, right + margin_x))
    crop = box if (box[2] - box[0]) * (box[3] - box[1]) < CROP_IF_AREA_BELOW else None
    fy, fx = (1.0, 1.0) if crop is None else (crop[2] - crop[0], crop[3] - crop[1])
    aspects = np.array([m["width"] * fx / (m["height"] * fy) for m in measured])
    # each image's own text box with ContentCrop's margins, as shares of the crop box
    text_h = (boxes[:, 2] - boxes[:, 0]) * (1 + 2 * CONTENT_MARGIN_Y) / fy
    text_w = (boxes[:, 3] - boxes[:, 1]) * (1 + 2 * CONTENT_MARGIN_X) / fx
    share_h, share_w = float(np.median(np.minimum(text_h, 1.0))), float(np.median(np.minimum(text_w, 1.0)))
    per_image = crop is not None and min(share_h, share_w) < CONTENT_CROP_BELOW
    if per_image:  # the network sees each image's text, so its shape sets the input's
        aspects = np.array([m["width"] * w / (m["height"] * h) for m, h, w in zip(measured, text_h * fy, text_w * fx)])
    aspect = float(np.percentile(aspects, 75))
    least = max(MIN_WIDTH, PIXELS_PER_CHARACTER * max_length)

    def width_at(rows: int) -> int:
        return int(np.clip(16 * round(rows * aspect / 16), 16 * np.ceil(least / 16), MAX_WIDTH))

    if height is None:
        height = TEXT_HEIGHT
        if width_at(height) < TALL_BELOW_PIXELS_PER_CHARACTER * max_length:
            height = TALL_TEXT_HEIGHT
    width = width_at(height)
    region = None
    if per_image:
        region = (
            int(np.ceil(height / max(share_h, 1 / MAX_REGION_SCALE))),
            int(np.ceil(width / max(share_w, 1 / MAX_REGION_SCALE))),
        )
    stats = {
        "sampled": len(measured),
        "max_length": int(max_length),
        "aspect_p75": round(aspect, 3),
        "aspect_median": round(float(np.median(aspects)), 3),
        "median_size": [
            int(np.median([m["height"] for m in measured])),
            int(np.median([m["width"] for m in measured])),
        ],
        "content_box": [round(float(v), 3) for v in box],
        "light_background": round(float(np.mean([m["background"] > 127 for m in measured])), 3),
        "coloured_text": round(float(np.mean([m["colour_spread"] > 60 for m in measured])), 3),
        "transparent": round(transparent / len(measured), 3),
        "text_share_of_crop": [round(share_h, 3), round(share_w, 3)],
    }
    crop = None if crop is None else tuple(round(float(v), 4) for v in crop)
    return TextInputFit((int(height), width), crop, "ink", "stretch", stats, region)


def choose_text_input(
    sources: Sequence,
    max_length: int,
    image_size: Sequence[int] | None = None,
    colour: str = "ink",
    seed: int = 0,
) -> TextInputFit:
    """The input a text run uses: :func:`fit_text_input` on its training images, then the user's overrides.

    Args:
        sources: the training images (paths or encoded bytes).
        max_length: the longest label, in characters.
        image_size: ``(height, width)`` in pixels given by the user (no crop then), or ``None`` to fit it.
        colour: ``"ink"`` (the fitted colour map) or ``"gray"`` (grayscale, padded, no per-image crop).
    """
    fit = fit_text_input(sources, max_length, seed=seed)
    if image_size:
        fit = dataclasses.replace(fit, image_size=tuple(int(v) for v in image_size), crop=None, region=None)
    if colour == "gray":
        fit = dataclasses.replace(fit, colour="gray", resize="pad", region=None)
    return fit
