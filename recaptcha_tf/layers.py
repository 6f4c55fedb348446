"""Custom layers, registered so that saved models load with ``safe_mode=True``.

No ``Lambda`` layers are used anywhere in the package: every piece of logic a
saved model needs is a registered layer with a JSON config.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "recaptcha_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class LabelNames(keras.layers.Layer):
    """Identity layer that carries a model's label vocabulary in its saved config.

    It sits at the output, so the ``.keras`` file knows what its outputs mean
    and ``predict`` needs only the model path.

    Args:
        names: class names (tiles, chars) or characters (text), in output order.
            For CTC and multi-head text models output index ``i + 1`` is
            ``names[i]`` and index 0 is the blank / end-of-text symbol.
        kind: ``"softmax"`` (single-label probabilities, shape ``(B, C)``),
            ``"sigmoid"`` (multi-label probabilities, ``(B, C)``), ``"ctc"``
            (per-frame logits ``(B, T, C + 1)``) or ``"multihead"`` (per-position
            probabilities ``(B, L, C + 1)``).
        threshold: decision threshold for ``"sigmoid"`` outputs.
        task: ``"tiles"``, ``"text"`` or ``"chars"``.
        resize: how raw images are fitted to the input, ``"stretch"`` or ``"pad"``.
        temperature: ``"softmax"`` only: the probabilities leave as ``softmax(log p / temperature)``, temperature
            scaling fitted on the validation split (``1``: unchanged; the arg-max never changes).
        min_confidence: the stored default of ``predict --min-confidence`` (chosen on the validation split), or
            ``None``.
        challenge_threshold: ``"softmax"`` only: grid challenges pick a cell when its target probability is at
            least this (chosen on the validation split's grids,
            :func:`recaptcha_tf.evaluation.challenge.choose_challenge_threshold`), or ``None``: the arg-max rule.
    """

    def __init__(
        self,
        names,
        kind="softmax",
        threshold=0.5,
        task="tiles",
        resize="stretch",
        temperature=1.0,
        min_confidence=None,
        challenge_threshold=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.names = [str(n) for n in names]
        self.kind = kind
        self.threshold = float(threshold)
        self.task = task
        self.resize = resize
        self.temperature = float(temperature)
        self.min_confidence = None if min_confidence is None else float(min_confidence)
        self.challenge_threshold = None if challenge_threshold is None else float(challenge_threshold)

    def call(self, inputs):
        if self.kind == "softmax" and self.temperature != 1.0:
            logits = ops.log(ops.clip(inputs, 1e-7, 1.0)) / self.temperature
            return ops.softmax(logits, axis=-1)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(names=self.names, kind=self.kind, threshold=self.threshold, task=self.task, resize=self.resize)
        if self.temperature != 1.0 or self.min_confidence is not None:  # older files' configs stay as they were
            config.update(temperature=self.temperature, min_confidence=self.min_confidence)
        if self.challenge_threshold is not None:
            config.update(challenge_threshold=self.challenge_threshold)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImagesToSequence(keras.layers.Layer):
    """Turn a feature map ``(B, H, W, C)`` into a left-to-right sequence ``(B, W, H * C)``.

    The width axis becomes time for the recurrent layers and CTC, as in the
    keras-io OCR example (which does it with Reshape after a transpose).
    """

    def call(self, inputs):
        shape = ops.shape(inputs)
        x = ops.transpose(inputs, (0, 2, 1, 3))
        return ops.reshape(x, (shape[0], shape[2], inputs.shape[1] * inputs.shape[3]))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, w, None if h is None or c is None else h * c)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImageNetPreprocessing(keras.layers.Layer):
    """The input normalisation an ImageNet backbone was trained with, as a saved layer.

    Takes RGB pixels in ``[0, 255]``, shape ``(B, H, W, 3)``, and applies
    ``keras.applications.imagenet_utils.preprocess_input`` with ``mode``:
    ``"tf"`` scales to ``[-1, 1]`` (MobileNetV2, ViT with mean 0.5 and std 0.5),
    ``"caffe"`` flips to BGR and subtracts the ImageNet mean (ResNet-50),
    ``"torch"`` scales to ``[0, 1]`` and standardises with the ImageNet mean and std.
    """

    MODES = ("tf", "caffe", "torch")

    def __init__(self, mode="tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"Unknown preprocessing mode {mode!r}; choose from {self.MODES}.")
        self.mode = mode

    def call(self, inputs):
        from keras.applications import imagenet_utils

        return imagenet_utils.preprocess_input(
            ops.cast(inputs, self.compute_dtype), mode=self.mode, data_format="channels_last"
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package=PACKAGE)
class InkMap(keras.layers.Layer):
    """Colour- and polarity-free text input: how far each pixel's colour is from the image's background.

    Takes pixels in ``[0, 255]``, shape ``(B, H, W, C)`` (C = 1 or 3), and returns
    ``(B, H, W, 1)`` in ``[0, 255]``: the Euclidean colour distance of every pixel
    from the background colour (the per-channel median of the image's border
    pixels, ``border`` pixels deep), divided by ``sqrt(C)`` and stretched so that
    the image's ``percentile``-th distance becomes 255 (never by more than
    ``255 / min_range``). Dark text on light, light text on dark, text in many
    colours and coloured backgrounds all become bright glyphs on black, with the
    faintest sets' contrast stretched to the full range.
    """

    def __init__(self, border=2, percentile=99.0, min_range=24.0, **kwargs):
        super().__init__(**kwargs)
        self.border, self.percentile, self.min_range = int(border), float(percentile), float(min_range)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1]
        b = self.border
        edges = [
            x[:, :b],
            x[:, -b:],
            ops.transpose(x[:, :, :b], (0, 2, 1, 3)),
            ops.transpose(x[:, :, -b:], (0, 2, 1, 3)),
        ]
        border = ops.concatenate([ops.reshape(e, (ops.shape(x)[0], -1, channels)) for e in edges], axis=1)
        background = _quantile(border, 50.0)  # (B, C)
        distance = ops.sqrt(ops.sum(ops.square(x - background[:, None, None, :]), axis=-1, keepdims=True) / channels)
        flat = ops.reshape(distance, (ops.shape(x)[0], -1, 1))
        top = ops.maximum(_quantile(flat, self.percentile), self.min_range)  # (B, 1)
        return ops.clip(distance * (255.0 / top)[:, None, None, :], 0.0, 255.0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "border": self.border,
            "percentile": self.percentile,
            "min_range": self.min_range,
        }


def _quantile(values, q: float):
    """The ``q``-th percentile of ``values`` ``(B, N, C)`` over axis 1 (nearest rank) -> ``(B, C)``."""
    ordered = ops.sort(values, axis=1)
    count = ops.shape(values)[1]
    index = ops.cast(ops.round(ops.cast(count - 1, "float32") * (q / 100.0)), "int32")
    return ops.take(ordered, index, axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ContentCrop(keras.layers.Layer):
    """Cut every image of a batch to its own text and resize it: a per-image crop for text that moves.

    Takes an ink map ``(B, H, W, C)`` (bright glyphs on black, e.g. from :class:`InkMap`) and returns
    ``(B, height, width, C)``: each image's box between the ``low`` and ``high`` quantiles of its ink mass
    along rows and along columns, widened by ``margin_y`` of its height above and below and ``margin_x``
    of its width left and right (plus one pixel), resampled with a triangle (bilinear, anti-aliased when
    shrinking) kernel. Built from matrix products only, so every export format runs it. An image without
    ink keeps its whole frame.
    """

    def __init__(self, size=(48, 192), low=0.01, high=0.99, margin_y=0.15, margin_x=0.04, **kwargs):
        super().__init__(**kwargs)
        self.size = (int(size[0]), int(size[1]))
        self.low, self.high = float(low), float(high)
        self.margin_y, self.margin_x = float(margin_y), float(margin_x)
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"ContentCrop needs 0 <= low < high <= 1, got {low} and {high}.")

    def _bounds(self, mass, length, margin):
        """``(start, stop)`` pixel coordinates ``(B,)`` of the ink-mass quantile box along one axis."""
        total = ops.sum(mass, axis=-1, keepdims=True)
        share = ops.cumsum(mass, axis=-1) / ops.maximum(total, 1e-6)
        first = ops.sum(ops.cast(share < self.low, "float32"), axis=-1)
        last = ops.sum(ops.cast(share < self.high, "float32"), axis=-1) + 1.0
        pad = margin * (last - first) + 1.0
        start, stop = ops.maximum(first - pad, 0.0), ops.minimum(last + pad, length)
        empty = total[:, 0] <= 1e-6
        return ops.where(empty, 0.0, start), ops.where(empty, length, stop)

    @staticmethod
    def _resampling(start, stop, out_size: int, in_size):
        """Rows that resample ``[start, stop)`` of an axis of ``in_size`` pixels to ``out_size``: ``(B, out, in)``."""
        scale = (stop - start) / out_size
        centres = start[:, None] + (ops.arange(out_size, dtype="float32")[None, :] + 0.5) * scale[:, None] - 0.5
        source = ops.cast(ops.arange(in_size), "float32")
        support = ops.maximum(scale, 1.0)[:, None, None]
        weights = ops.relu(1.0 - ops.abs(centres[:, :, None] - source[None, None, :]) / support)
        return weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-6)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        height, width = ops.shape(x)[1], ops.shape(x)[2]
        ink = ops.mean(x, axis=-1)  # (B, H, W)
        y0, y1 = self._bounds(ops.sum(ink, axis=2), ops.cast(height, "float32"), self.margin_y)
        x0, x1 = self._bounds(ops.sum(ink, axis=1), ops.cast(width, "float32"), self.margin_x)
        rows = self._resampling(y0, y1, self.size[0], height)  # (B, h, H)
        cols = self._resampling(x0, x1, self.size[1], width)  # (B, w, W)
        channels_first = ops.transpose(x, (0, 3, 1, 2))  # (B, C, H, W)
        out = ops.matmul(ops.matmul(rows[:, None], channels_first), ops.transpose(cols, (0, 2, 1))[:, None])
        return ops.transpose(out, (0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.size, input_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "size": list(self.size),
            "low": self.low,
            "high": self.high,
            "margin_y": self.margin_y,
            "margin_x": self.margin_x,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class RelativeCrop(keras.layers.Layer):
    """Crop every image of a batch to the same box given as fractions of its height and width.

    ``box = (top, left, bottom, right)`` with ``0 <= top < bottom <= 1`` and
    ``0 <= left < right <= 1``; ``(B, H, W, C)`` -> ``(B, h, w, C)`` with
    ``h = round(bottom * H) - round(top * H)`` (at least 1 pixel). Used when a
    text set's glyphs always sit in one part of a larger canvas.
    """

    def __init__(self, box=(0.0, 0.0, 1.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        box = tuple(float(v) for v in box)
        top, left, bottom, right = box
        if not (0.0 <= top < bottom <= 1.0 and 0.0 <= left < right <= 1.0):
            raise ValueError(f"RelativeCrop box must be (top, left, bottom, right) fractions, got {box}.")
        self.box = box

    def call(self, inputs):
        top, left, bottom, right = self.box
        shape = ops.shape(inputs)
        height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")

        def edges(start, stop, size):
            first = ops.cast(ops.round(start * size), "int32")
            last = ops.maximum(ops.cast(ops.round(stop * size), "int32"), first + 1)
            return first, last

        y0, y1 = edges(top, bottom, height)
        x0, x1 = edges(left, right, width)
        return inputs[:, y0:y1, x0:x1, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "box": list(self.box)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionQueries(keras.layers.Layer):
    """A learned query vector per character position, repeated over the batch.

    ``(B, ...)`` (any tensor, only its batch size is used) -> ``(B, length, width)``;
    the queries of a multi-head text model's position attention.
    """

    def __init__(self, length, width, **kwargs):
        super().__init__(**kwargs)
        self.length, self.width = int(length), int(width)

    def build(self, input_shape):
        self.queries = self.add_weight(shape=(self.length, self.width), initializer="random_normal", name="queries")

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        return ops.broadcast_to(
            ops.expand_dims(ops.cast(self.queries, self.compute_dtype), 0), (batch, self.length, self.width)
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.length, self.width)

    def get_config(self):
        return {**super().get_config(), "length": self.length, "width": self.width}
