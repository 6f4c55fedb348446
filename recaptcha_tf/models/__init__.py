"""Model registry and the wrappers that make trained models self-contained.

``build_model(name, input_shape, num_classes, ...)`` builds a registered network
(see :mod:`recaptcha_tf.models.registry`). :func:`build_classifier` and
:func:`build_text_model` wrap it so the model takes *raw* images of any size
(pixel values 0-255, uint8 or float) and records its label names, so a saved
``.keras`` file is all ``predict`` needs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras

from recaptcha_tf.data.pipeline import resizing_layer
from recaptcha_tf.layers import ContentCrop, InkMap, LabelNames, RelativeCrop
from recaptcha_tf.models import (  # noqa: F401  (registers builders)
    cnn,
    efficientnet_lite,
    hybrid_vit,
    resnet,
    text,
    transfer,
    vit,
)
from recaptcha_tf.models.registry import (
    _BUILT_IN_TASKS_BY_HEAD,
    SEQUENCE_HEADS,
    ModelConfigError,
    build_model,
    check_model_kwargs,
    list_models,
    model_head,
    pretrained_recipe,
    register_model,
)
from recaptcha_tf.models.registry import (
    model_tasks as model_tasks,  # deprecated, goes in 0.3.0
)

TEXT_COLOURS = ("gray", "ink")

__all__ = [
    "ModelConfigError",
    "build_model",
    "check_model_head",
    "check_model_kwargs",
    "list_models",
    "register_model",
    "pretrained_recipe",
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
    crop: Sequence[float] | None = None,
    ink: bool = False,
    region: Sequence[int] | None = None,
    augmentation: keras.layers.Layer | None = None,
) -> keras.Model:
    """Wrap ``network`` so it accepts raw images ``(B, H, W, channels)`` of any size.

    The wrapper resizes with the same Keras layer the tf.data pipeline uses,
    optionally turns colours into a one-channel ink map
    (:class:`~recaptcha_tf.layers.InkMap`; ``network`` then takes one channel),
    runs ``network`` (which normalises its own inputs) and passes the outputs
    through ``label_layer`` so the saved model carries its label names.

    With ``crop = (top, left, bottom, right)`` (fractions) the first resize goes to
    a larger *canvas* whose crop box is exactly the network's input size; the
    box is then cut out (:class:`~recaptcha_tf.layers.RelativeCrop`) and resized
    once more (a no-op up to rounding). The tf.data pipeline prepares images at
    that canvas size, so training and raw-image inference see the same pixels.

    With ``region = (h, w)`` as well (ink maps only) the box is resized to ``region``
    instead, and each image's own text is then cut out of it and resized to the
    network's input (:class:`~recaptcha_tf.layers.ContentCrop`): for text that
    moves around inside the box.

    ``augmentation`` (Keras random preprocessing layers, active only in training) goes
    right before ``network``, on its ``(B, height, width, C)`` input: after a per-image
    crop that is 10-20 times fewer pixels than the canvas the pipeline would augment.
    """
    height, width = network.input_shape[1:3]
    if region is not None and (crop is None or not ink):
        raise ModelConfigError("A per-image text crop (region) needs a crop box and the ink colour map.")
    inner = (height, width) if region is None else tuple(int(v) for v in region)
    inputs = keras.Input((None, None, channels), dtype="float32", name="image")
    # An explicit training=False: Keras's Resizing otherwise records training=True in the saved graph, which
    # then puts the whole model (dropout, BatchNorm) in training mode when it is called as model(x).
    x = resizing_layer(crop_canvas(inner, crop), resize)(inputs, training=False)
    if crop is not None:
        x = RelativeCrop(crop, name="crop", dtype="float32")(x)
        x = keras.layers.Resizing(*inner, interpolation="bilinear", name="resize_crop", dtype="float32")(
            x, training=False
        )
    if ink:
        x = InkMap(name="ink", dtype="float32")(x)
    if region is not None:
        x = ContentCrop((height, width), name="text_crop", dtype="float32")(x)
    if augmentation is not None:
        x = augmentation(x)
    x = network(x)
    outputs = label_layer(x)
    return keras.Model(inputs, outputs, name=name or network.name)


def crop_canvas(image_size: tuple[int, int], crop: Sequence[float] | None) -> tuple[int, int]:
    """The ``(height, width)`` whose relative ``crop`` box is ``image_size`` (``image_size`` without a crop)."""
    if crop is None:
        return tuple(image_size)
    top, left, bottom, right = crop
    return round(image_size[0] / (bottom - top)), round(image_size[1] / (right - left))


def check_model_head(name: str, heads: Sequence[str]) -> None:
    """Raise :class:`ModelConfigError` unless ``name`` is a registered model whose head kind is in ``heads``."""
    if model_head(name) not in heads:
        raise ModelConfigError(
            f"Model {name!r} has a {model_head(name)} head, not one of {tuple(heads)}; use one of {list_models(heads)}."
        )


def check_model_task(name: str, task: str, kwargs: dict | None = None) -> None:
    """Deprecated (goes in 0.3.0): use ``recaptcha_tf.tasks.get_task(task).check_model(name, kwargs)``."""
    warnings.warn(
        "check_model_task() is deprecated and goes in 0.3.0: use recaptcha_tf.tasks.get_task(task).check_model()",
        FutureWarning,
        stacklevel=2,
    )
    check_model_head(name, [head for head, tasks in _BUILT_IN_TASKS_BY_HEAD.items() if task in tasks])
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
    check_model_head(name, ("classifier",))
    network = build_model(
        name,
        (*image_size, channels),
        len(class_names),
        output_activation="sigmoid" if multi_label else "softmax",
        **kwargs,
    )
    label_layer = LabelNames(
        class_names,
        kind="sigmoid" if multi_label else "softmax",
        threshold=threshold,
        task=task,
        resize=resize,
        name="label_names",
        dtype="float32",
    )
    return with_raw_image_input(network, channels, resize, label_layer, name=name)


def build_text_model(
    name: str,
    characters: str,
    image_size: tuple[int, int] = (48, 192),
    channels: int = 1,
    resize: str = "pad",
    max_length: int = 6,
    colour: str = "gray",
    crop: Sequence[float] | None = None,
    region: Sequence[int] | None = None,
    augmentation: keras.layers.Layer | None = None,
    **kwargs,
) -> keras.Model:
    """A text CAPTCHA reader (``crnn`` or ``multihead``) that takes raw images.

    Args:
        colour: ``"gray"`` feeds the decoded ``channels`` as they are; ``"ink"`` feeds
            the one-channel distance from each image's background colour
            (:class:`~recaptcha_tf.layers.InkMap`), for any polarity or text colour.
        crop: a ``(top, left, bottom, right)`` box in fractions that every raw image is
            cropped to before resizing, or ``None``.
        region: ``(height, width)`` the crop box is resized to before each image's own text is
            cut out (:class:`~recaptcha_tf.layers.ContentCrop`); ``None`` for no per-image crop.
        augmentation: random preprocessing layers run (in training only) on the network's input,
            after the crop and the colour map; ``None`` leaves augmentation to the data pipeline.

    Outputs ``(B, T, len(characters) + 1)`` CTC logits for ``crnn`` and
    ``(B, max_length, len(characters) + 1)`` probabilities for ``multihead``.
    """
    check_model_head(name, SEQUENCE_HEADS)
    if colour not in TEXT_COLOURS:
        raise ModelConfigError(f"colour must be one of {TEXT_COLOURS}, got {colour!r}.")
    if model_head(name) == "multihead":
        kwargs["max_length"] = max_length
    ink = colour == "ink"
    network = build_model(name, (*image_size, 1 if ink else channels), len(characters) + 1, **kwargs)
    label_layer = LabelNames(
        list(characters), kind=model_head(name), task="text", resize=resize, name="label_names", dtype="float32"
    )
    return with_raw_image_input(
        network, channels, resize, label_layer, name=name, crop=crop, ink=ink, region=region, augmentation=augmentation
    )


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
    """The inner network of a wrapped model (the part with trainable weights).

    The last nested model: an ``augmentation`` stack (a ``keras.Sequential``) may come before it.
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[-1] if nested else model
