"""ImageNet backbones from ``keras.applications`` with a classification head.

Every network built here has the same shape, so freezing, unfreezing and
weight loading work the same for all of them (ResNet-18/34 and ViT follow it
too)::

    pixels [0, 255] -> the backbone's own input normalisation -> "backbone" (nested Model)
                    -> global average pooling -> dropout -> Dense "predictions"

:mod:`recaptcha_tf.models.finetune` freezes the backbone for a first phase and
unfreezes it (or its top blocks) for a second one, keeping BatchNormalization
layers frozen, hence in inference mode, as the Keras transfer-learning guide
recommends.
"""

from __future__ import annotations

import keras
from keras import layers

from recaptcha_tf.layers import ImageNetPreprocessing
from recaptcha_tf.models.backbone import BACKBONE
from recaptcha_tf.models.registry import register_model
from recaptcha_tf.models.weights import WeightsError, build_with_imagenet, load_weights_file, require_file_weights


def rgb_input(x, channels: int):
    """Repeat a grayscale image to 3 channels for an ImageNet backbone (no-op for RGB)."""
    if channels == 3:
        return x
    if channels != 1:
        raise ValueError(f"ImageNet backbones take 1 or 3 channels, not {channels}.")
    return layers.Concatenate(name="gray_to_rgb")([x, x, x])


def classifier_head(features, num_classes: int, output_activation: str, dropout: float, pooled: bool = False):
    """Global average pooling (unless already pooled), dropout, float32 Dense output."""
    x = features if pooled else layers.GlobalAveragePooling2D(name="gap")(features)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation=output_activation, name="predictions", dtype="float32")(x)


def application_backbone(constructor, model_name: str, image_size, weights: str | None, **kwargs) -> keras.Model:
    """``keras.applications.<constructor>`` without its top, on RGB inputs of ``image_size`` ``(height, width)``.

    ``weights``: ``None``, ``"imagenet"`` (the cache or a download) or a local ``.weights.h5`` file.
    """
    weights = require_file_weights(weights, model_name)
    kwargs = dict(input_shape=(*image_size, 3), include_top=False, **kwargs)
    if weights == "imagenet":
        return build_with_imagenet(constructor, model_name, **kwargs)
    backbone = constructor(weights=None, **kwargs)
    if weights:
        load_weights_file(backbone, weights, model_name)
    return backbone


def application_classifier(
    constructor,
    model_name: str,
    input_shape,
    num_classes: int,
    preprocess: str | None,
    *,
    weights: str | None = None,
    output_activation: str = "softmax",
    dropout: float = 0.2,
    **backbone_kwargs,
) -> keras.Model:
    """Wrap ``keras.applications.<constructor>`` as ``pixels -> normalise -> backbone -> head``.

    Args:
        constructor: e.g. ``keras.applications.MobileNetV2``.
        preprocess: ``"tf"`` ([-1, 1]), ``"caffe"`` (BGR minus ImageNet mean), ``"torch"``,
            or ``None`` when the backbone normalises its own inputs (EfficientNet).
        weights: ``None``, ``"imagenet"`` or a local weights file for the backbone.
    """
    height, width, channels = input_shape
    backbone = application_backbone(constructor, model_name, (height, width), weights, **backbone_kwargs)
    backbone.name = BACKBONE
    inputs = keras.Input(input_shape, name="pixels")
    x = rgb_input(inputs, channels)
    if preprocess:
        x = ImageNetPreprocessing(preprocess, name="normalise", dtype="float32")(x)
    features = backbone(x)
    outputs = classifier_head(features, num_classes, output_activation, dropout)
    return keras.Model(inputs, outputs, name=model_name)


EFFICIENTNET_BLOCKS = r"^(block\d+[a-z])(_|$)"  # block6d_expand_conv, ...


@register_model("resnet50", blocks=r"^(conv\d+_block\d+)(_|$)")
def build_resnet50(input_shape, num_classes, *, weights=None, output_activation="softmax", dropout=0.2):
    """ResNet-50 (keras.applications, bottleneck blocks), caffe-style input normalisation."""
    return application_classifier(
        keras.applications.ResNet50,
        "resnet50",
        input_shape,
        num_classes,
        "caffe",
        weights=weights,
        output_activation=output_activation,
        dropout=dropout,
    )


MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)

# With pretrained weights: 192 px, two epochs for the head, six fine-tuning everything (cosine from 3e-4); about
# 20 minutes for alpha 1.0 on the shared tiles on 2 CPU cores.
MOBILENET_RECIPE = dict(
    image_size=(192, 192),
    batch_size=32,
    epochs=10,  # at most: as many as fit time_budget_minutes on this machine (train_classifier.time_budget)
    time_budget_minutes=30,
    freeze_epochs=2,
    learning_rate=1e-3,
    fine_tune_learning_rate=3e-4,
    unfreeze="all",
    label_smoothing=0.1,
)


@register_model(
    "mobilenetv2",
    pretrained=MOBILENET_RECIPE,
    blocks=r"^(block_\d+)(_|$)",
    cpu_bfloat16=False,
)
def build_mobilenetv2(
    input_shape, num_classes, *, alpha: float = 1.0, weights=None, output_activation="softmax", dropout=0.2
):
    """MobileNetV2 with width multiplier ``alpha`` (0.35 to 1.4), inputs scaled to [-1, 1]."""
    if float(alpha) not in MOBILENET_ALPHAS:
        raise ValueError(f"MobileNetV2 alpha must be one of {MOBILENET_ALPHAS}, not {alpha}.")
    return application_classifier(
        keras.applications.MobileNetV2,
        f"mobilenetv2_{float(alpha)}",
        input_shape,
        num_classes,
        "tf",
        weights=weights,
        output_activation=output_activation,
        dropout=dropout,
        alpha=float(alpha),
    )


@register_model("efficientnetb0", blocks=EFFICIENTNET_BLOCKS)
def build_efficientnetb0(input_shape, num_classes, *, weights=None, output_activation="softmax", dropout=0.2):
    """EfficientNet-B0; the backbone rescales and normalises its own [0, 255] inputs."""
    return application_classifier(
        keras.applications.EfficientNetB0,
        "efficientnetb0",
        input_shape,
        num_classes,
        None,
        weights=weights,
        output_activation=output_activation,
        dropout=dropout,
    )


@register_model("efficientnetv2b0", blocks=EFFICIENTNET_BLOCKS)
def build_efficientnetv2b0(input_shape, num_classes, *, weights=None, output_activation="softmax", dropout=0.2):
    """EfficientNetV2-B0 with its built-in input preprocessing ([0, 255] inputs)."""
    return application_classifier(
        keras.applications.EfficientNetV2B0,
        "efficientnetv2b0",
        input_shape,
        num_classes,
        None,
        weights=weights,
        output_activation=output_activation,
        dropout=dropout,
        include_preprocessing=True,
    )


__all__ = ["BACKBONE", "WeightsError", "application_classifier", "classifier_head", "rgb_input"]
