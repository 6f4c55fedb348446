"""ResNet-18/34 (basic blocks, written with Keras layers) and ResNet-50 from keras.applications.

Keras ships no ResNet-18/34, so they are built here following He et al. (2016),
"Deep Residual Learning for Image Recognition", Table 1: a 7x7/2 stem, 3x3/2
max-pool, four stages of basic blocks (64, 128, 256, 512 filters) with
projection shortcuts where the shape changes, global average pooling and a
dense classifier. ResNet-18 with a 1000-class head has 11.69M parameters.
"""

from __future__ import annotations

import keras
from keras import layers

from recaptcha_tf.models.backbone import BACKBONE
from recaptcha_tf.models.registry import BN_MOMENTUM, register_model
from recaptcha_tf.models.transfer import classifier_head
from recaptcha_tf.models.weights import WeightsError, load_weights_file, require_file_weights

STAGE_FILTERS = (64, 128, 256, 512)


def basic_block(x, filters: int, stride: int, name: str):
    """Two 3x3 conv+BN layers with an identity or 1x1 projection shortcut."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name=f"{name}_proj_bn")(shortcut)
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name=f"{name}_bn2")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def resnet_trunk(x, blocks, width: int = 64, small_input: bool = False, strides=(1, 2, 2, 2)):
    """Stem and basic-block stages of a ResNet; returns the last feature map.

    ``strides`` gives each stage's first-block stride; a tuple like ``(2, 1)``
    downsamples height only (useful for text lines).
    """
    if small_input:
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(x)
    else:
        x = layers.Conv2D(width, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if not small_input:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, n_blocks in enumerate(blocks):
        for b in range(n_blocks):
            stride = strides[stage] if b == 0 else 1
            x = basic_block(x, width * 2**stage, stride, name=f"stage{stage + 1}_block{b + 1}")
    return x


def resnet_basic(
    input_shape,
    num_classes: int,
    blocks: tuple[int, int, int, int],
    *,
    output_activation: str = "softmax",
    width: int = 64,
    small_input: bool | None = None,
    dropout: float = 0.0,
    weights: str | None = None,
    name: str = "resnet",
) -> keras.Model:
    """A basic-block ResNet.

    Args:
        blocks: basic blocks per stage, ``(2, 2, 2, 2)`` for ResNet-18.
        width: filters of the first stage (64 in the paper).
        small_input: use a 3x3/1 stem without max-pooling (CIFAR-style) for
            inputs under 64 px, such as 52x32 glyphs. ``None`` decides from
            the input size.
        weights: ``None`` or a ``.weights.h5`` file saved from the same backbone
            (Keras ships no ImageNet ResNet-18/34, so ``"imagenet"`` is an error).

    The trunk is a nested model named ``backbone`` (see :mod:`recaptcha_tf.models.transfer`),
    so it can be frozen, unfrozen by stage and loaded from a weights file.
    """
    weights = require_file_weights(weights, name)
    if weights == "imagenet":
        raise WeightsError(
            f"Keras ships no ImageNet weights for {name}; use resnet50, mobilenetv2 or "
            "efficientnetb0 for --weights imagenet, or pass --weights PATH."
        )
    if small_input is None:
        small_input = min(input_shape[0], input_shape[1]) < 64
    trunk_input = keras.Input(input_shape, name="normalised")
    backbone = keras.Model(
        trunk_input, resnet_trunk(trunk_input, blocks, width=width, small_input=small_input), name=BACKBONE
    )
    if weights:
        load_weights_file(backbone, weights, name)
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = backbone(x)
    outputs = classifier_head(x, num_classes, output_activation, dropout)
    return keras.Model(inputs, outputs, name=name)


RESNET_BLOCKS = r"^(stage\d+_block\d+)(_|$)"  # stage4_block2_conv1, ...
# The tuner's architecture names on the ResNet arguments (c2d_filters: the stem width).
RESNET_TUNE_ALIASES = {"c2d_filters": "width", "dropout": "dropout"}


@register_model("resnet18", tune_aliases=RESNET_TUNE_ALIASES, blocks=RESNET_BLOCKS)
def build_resnet18(input_shape, num_classes, **kwargs) -> keras.Model:
    """ResNet-18: basic blocks (2, 2, 2, 2)."""
    return resnet_basic(input_shape, num_classes, (2, 2, 2, 2), name="resnet18", **kwargs)


@register_model("resnet34", tune_aliases=RESNET_TUNE_ALIASES, blocks=RESNET_BLOCKS)
def build_resnet34(input_shape, num_classes, **kwargs) -> keras.Model:
    """ResNet-34: basic blocks (3, 4, 6, 3)."""
    return resnet_basic(input_shape, num_classes, (3, 4, 6, 3), name="resnet34", **kwargs)
