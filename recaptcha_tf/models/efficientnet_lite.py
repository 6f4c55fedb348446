"""EfficientNet-Lite0 as a keras-hub ``EfficientNetBackbone``.

EfficientNet-Lite (Tan & Le; the TensorFlow "lite" variants) drops
squeeze-and-excitation, uses ReLU6 and a fixed stem and head, which makes it
quantise well and run fast on CPUs: 3.4M backbone parameters, 75.1% ImageNet
top-1 for the official checkpoint.

``--weights`` takes

* ``imagenet``: the public keras-hub preset ``efficientnet_lite0_ra_imagenet``
  (downloaded and cached by keras-hub; it normalises with ImageNet mean/std, read
  from its image converter);
* a local preset folder, e.g. ``../shared/weights/efficientnet_lite0_imagenet``
  (no image converter: TF EfficientNet-Lite's ``(pixels - 127) / 128``);
* any other EfficientNet preset name, or a ``.weights.h5`` file saved from this backbone.

The model is ``pixels [0, 255] -> Rescaling (the preset's normalisation) ->
"backbone" (1280-channel map at stride 32) -> global average pooling -> dropout
-> Dense``, the same shape as :mod:`recaptcha_tf.models.transfer`, so freezing,
unfreezing by block (``block6a`` ...) and the transfer recipe apply unchanged.
"""

from __future__ import annotations

import keras

from recaptcha_tf.models.backbone import BACKBONE
from recaptcha_tf.models.hub import load_hub_backbone, normalisation_layer, preset_normalisation
from recaptcha_tf.models.registry import register_model
from recaptcha_tf.models.transfer import classifier_head, rgb_input

IMAGENET_PRESET = "efficientnet_lite0_ra_imagenet"
# TF EfficientNet-Lite: (pixels - 127) / 128, used when the preset has no image converter.
LITE_NORMALISATION = (1 / 128, -127 / 128)

# The lite0 block table, as keras-hub's timm converter defines it (7 stages, no squeeze-excite, ReLU6).
LITE0_CONFIG = dict(
    stackwise_width_coefficients=[1.0] * 7,
    stackwise_depth_coefficients=[1.0] * 7,
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
    stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
    stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
    stackwise_squeeze_and_excite_ratios=[0] * 7,
    stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    stackwise_block_types=["v1"] * 7,
    stackwise_force_input_filters=[0] * 7,
    dropout=0,
    depth_divisor=8,
    min_depth=None,
    activation="relu6",
    include_stem_padding=False,
    use_depth_divisor_as_min_depth=True,
    cap_round_filter_decrease=True,
    stem_conv_padding="same",
    batch_norm_momentum=0.9,
    batch_norm_epsilon=1e-3,
)


def efficientnet_lite0_backbone(weights=None) -> tuple[keras.Model, str | None]:
    """``(backbone, preset)`` for ``--weights`` (see :func:`recaptcha_tf.models.hub.load_hub_backbone`)."""
    import keras_hub

    return load_hub_backbone(
        keras_hub.models.EfficientNetBackbone,
        weights,
        IMAGENET_PRESET,
        "efficientnet-lite0",
        dict(LITE0_CONFIG, input_shape=(None, None, 3)),
    )


# The transfer recipe used with pretrained weights (recaptcha_tf.models.registry.pretrained_recipe). Sized for about
# 30 minutes on 2 CPU cores on the 9,419 shared tiles (120 px originals): 160 px (a full fine-tuning epoch of
# the ~8k balanced training tiles costs about 7 minutes there, a frozen one 2.6), one epoch for the head on the
# frozen backbone, then three fine-tuning everything (BatchNorm kept in inference mode) on a cosine from 3e-4.
LITE0_RECIPE = dict(
    image_size=(160, 160),
    batch_size=32,
    epochs=10,  # at most: as many as fit time_budget_minutes on this machine (train_classifier.time_budget)
    time_budget_minutes=30,
    freeze_epochs=1,
    learning_rate=1e-3,
    fine_tune_learning_rate=3e-4,
    unfreeze="all",
    label_smoothing=0.1,
)


@register_model(
    "efficientnet-lite0",
    pretrained=LITE0_RECIPE,
    blocks=r"^(block\d+[a-z])(_|$)",
    cpu_bfloat16=False,
)
def build_efficientnet_lite0(
    input_shape, num_classes, *, weights=None, output_activation="softmax", dropout: float = 0.3
):
    """EfficientNet-Lite0 (keras-hub); inputs normalised as its preset says."""
    backbone, preset = efficientnet_lite0_backbone(weights)
    backbone.name = BACKBONE
    inputs = keras.Input(input_shape, name="pixels")
    x = rgb_input(inputs, input_shape[-1])
    x = normalisation_layer(preset_normalisation(preset, LITE_NORMALISATION))(x)
    outputs = classifier_head(backbone(x), num_classes, output_activation, dropout)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")
