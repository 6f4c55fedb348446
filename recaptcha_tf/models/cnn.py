"""The BN+LeakyReLU CNN of the seed project, with its knobs.

Each convolution and each hidden dense layer is followed by BatchNormalization
and *then* the activation (``conv -> BN -> act``), so the convolutions and
dense layers carry no bias (BN's beta replaces it).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from recaptcha_tf.models.registry import BN_MOMENTUM, register_model

ACTIVATIONS = ("leaky_relu", "relu", "elu", "gelu", "selu", "swish")


def activation_layer(activation: str, **kwargs) -> keras.layers.Layer:
    """A Keras activation layer by name; ``leaky_relu`` uses slope 0.1."""
    if activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.1, **kwargs)
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}; choose from {ACTIVATIONS}.")
    return layers.Activation(activation, **kwargs)


def conv_filters(conv_layers: int, filters: int | Sequence[int], max_filters: int = 256) -> list[int]:
    """Filters per conv layer: a list as given, or an int doubled every layer up to ``max_filters``."""
    if isinstance(filters, int):
        return [min(filters * 2**i, max_filters) for i in range(conv_layers)]
    filters = list(filters)
    if len(filters) != conv_layers:
        raise ValueError(f"{conv_layers} conv layers but {len(filters)} filter counts: {filters}.")
    return filters


@register_model(
    "cnn",
    tune_aliases={
        "c2d_layers": "conv_layers",
        "c2d_filters": "filters",
        "dense_layers": "dense_layers",
        "dense_neurons": "dense_units",
        "dropout": "dropout",
        "activation": "activation",
    },
)
def build_cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    conv_layers: int = 5,
    filters: int | Sequence[int] = 32,
    convs_per_layer: int = 2,
    stem_stride: int = 2,
    dense_layers: int = 1,
    dense_units: int = 256,
    dropout: float = 0.2,
    activation: str = "leaky_relu",
    output_activation: str = "softmax",
    name: str = "cnn",
) -> keras.Model:
    """BN+activation CNN.

    Args:
        input_shape: ``(height, width, channels)``; pixels in ``[0, 255]``.
        num_classes: output units.
        conv_layers: number of conv stages, each followed by 2x2 max-pooling
            (the last stage by global average pooling).
        filters: filters of the first stage (doubled each stage, at most 256)
            or an explicit list.
        convs_per_layer: 3x3 convolutions per stage.
        stem_stride: stride of the very first convolution; 2 halves the cost
            of every later layer, so a larger input costs what a smaller one did.
        dense_layers, dense_units: hidden dense layers before the classifier.
        dropout: dropout rate before each dense layer.
        activation: ``leaky_relu`` (default), ``relu``, ``elu``, ``gelu``, ...
        output_activation: ``softmax`` (single-label) or ``sigmoid`` (multi-label).

    Returns:
        Model mapping ``(B, H, W, C)`` to ``(B, num_classes)`` probabilities.
    """
    if conv_layers < 1:
        raise ValueError("conv_layers must be at least 1.")
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, f in enumerate(conv_filters(conv_layers, filters)):
        for j in range(convs_per_layer):
            stride = stem_stride if (i, j) == (0, 0) else 1
            x = layers.Conv2D(f, 3, strides=stride, padding="same", use_bias=False, name=f"conv{i + 1}_{j + 1}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{i + 1}_{j + 1}_bn")(x)
            x = activation_layer(activation, name=f"conv{i + 1}_{j + 1}_act")(x)
        if i < conv_layers - 1 and min(x.shape[1], x.shape[2]) >= 2:
            x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    for i in range(dense_layers):
        x = layers.Dropout(dropout, name=f"dense{i + 1}_dropout")(x)
        x = layers.Dense(dense_units, use_bias=False, name=f"dense{i + 1}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dense{i + 1}_bn")(x)
        x = activation_layer(activation, name=f"dense{i + 1}_act")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation=output_activation, name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
