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
    """

    def __init__(self, names, kind="softmax", threshold=0.5, task="tiles", resize="stretch", **kwargs):
        super().__init__(**kwargs)
        self.names = [str(n) for n in names]
        self.kind = kind
        self.threshold = float(threshold)
        self.task = task
        self.resize = resize

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            names=self.names, kind=self.kind, threshold=self.threshold, task=self.task, resize=self.resize
        )
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

        return imagenet_utils.preprocess_input(ops.cast(inputs, self.compute_dtype), mode=self.mode,
                                               data_format="channels_last")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
