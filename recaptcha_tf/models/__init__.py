"""Model registry and the wrappers that make trained models self-contained.

``build_model(name, input_shape, num_classes, ...)`` builds a registered network
(see :mod:`recaptcha_tf.models.registry`). :func:`build_classifier` and
:func:`build_text_model` wrap it so the model takes *raw* images of any size
(pixel values 0-255, uint8 or float) and records its label names, so a saved
``.keras`` file is all ``predict`` needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from recaptcha_tf.data.pipeline import resizing_layer
from recaptcha_tf.layers import LabelNames
from recaptcha_tf.models import cnn, resnet, text, transfer, vit  # noqa: F401  (registers builders)
from recaptcha_tf.models.registry import (
    ModelConfigError, build_model, check_model_kwargs, list_models, model_tasks, register_model,
)

__all__ = [
    "build_model",
    "list_models",
    "register_model",
    "build_classifier",
    "build_text_model",
    "with_raw_image_input",
    "label_names_layer",
    "network_of",
]


def with_raw_image_input(
    network: keras.Model,
    channels: int,
    resize: str,
    label_layer: LabelNames,
    name: str | None = None,
) -> keras.Model:
    """Wrap ``network`` so it accepts raw images ``(B, H, W, channels)`` of any size.

    The wrapper resizes with the same Keras layer the tf.data pipeline uses, runs
    ``network`` (which normalises its own inputs) and passes the outputs through
    ``label_layer`` so the saved model carries its label names.
    """
    height, width = network.input_shape[1:3]
    inputs = keras.Input((None, None, channels), dtype="float32", name="image")
    # An explicit training=False: Keras's Resizing otherwise records training=True in the saved graph, which
    # then puts the whole model (dropout, BatchNorm) in training mode when it is called as model(x).
    x = resizing_layer((height, width), resize)(inputs, training=False)
    x = network(x)
    outputs = label_layer(x)
    return keras.Model(inputs, outputs, name=name or network.name)


def check_model_task(name: str, task: str, kwargs: dict | None = None) -> None:
    """Raise :class:`ModelConfigError` unless ``name`` is a registered model for ``task``
    (and, given ``kwargs``, takes those builder arguments with values of the right type)."""
    if task not in model_tasks(name):
        raise ModelConfigError(f"Model {name!r} is for tasks {model_tasks(name)}, not {task!r}; "
                               f"use one of {list_models(task)}.")
    if kwargs is not None:
        check_model_kwargs(name, kwargs)


def build_classifier(
    name: str,
    class_names: Sequence[str],
    image_size: tuple[int, int] = (120, 120),
    channels: int = 3,
    resize: str = "stretch",
    multi_label: bool = False,
    threshold: float = 0.5,
    task: str = "tiles",
    **kwargs,
) -> keras.Model:
    """An image classifier that takes raw images and knows its class names.

    Returns a model mapping ``(B, H, W, channels)`` raw pixels to
    ``(B, len(class_names))`` softmax (or sigmoid, with ``multi_label``) probabilities.
    """
    check_model_task(name, task)
    network = build_model(
        name,
        (*image_size, channels),
        len(class_names),
        output_activation="sigmoid" if multi_label else "softmax",
        **kwargs,
    )
    label_layer = LabelNames(
        class_names, kind="sigmoid" if multi_label else "softmax", threshold=threshold, task=task,
        resize=resize, name="label_names", dtype="float32",
    )
    return with_raw_image_input(network, channels, resize, label_layer, name=name)


def build_text_model(
    name: str,
    characters: str,
    image_size: tuple[int, int] = (48, 192),
    channels: int = 1,
    resize: str = "pad",
    max_length: int = 6,
    **kwargs,
) -> keras.Model:
    """A text CAPTCHA reader (``crnn`` or ``multihead``) that takes raw images.

    Outputs ``(B, T, len(characters) + 1)`` CTC logits for ``crnn`` and
    ``(B, max_length, len(characters) + 1)`` probabilities for ``multihead``.
    """
    check_model_task(name, "text")
    if name == "multihead":
        kwargs["max_length"] = max_length
    network = build_model(name, (*image_size, channels), len(characters) + 1, **kwargs)
    kind = "multihead" if name == "multihead" else "ctc"
    label_layer = LabelNames(list(characters), kind=kind, task="text", resize=resize, name="label_names",
                             dtype="float32")
    return with_raw_image_input(network, channels, resize, label_layer, name=name)


def label_names_layer(model: keras.Model) -> LabelNames:
    """The :class:`LabelNames` layer of a model built by this package (clear error otherwise)."""
    for layer in reversed(model.layers):
        if isinstance(layer, LabelNames):
            return layer
    raise ValueError(
        f"Model {model.name!r} has no LabelNames layer: it was not built by recaptcha_tf, "
        "so its class names and decoding are unknown."
    )


def network_of(model: keras.Model) -> keras.Model:
    """The inner network of a wrapped model (the part with trainable weights)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    return model
