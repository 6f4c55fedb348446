"""Vision Transformers through keras-hub's ``ViTBackbone``.

Why keras-hub and not ``vit-keras``: keras-hub is the maintained Keras 3
library (the Keras team's own), its ``ViTBackbone`` is a regular serializable
Keras model that saves in ``.keras`` files and loads in safe mode, runs on
every Keras backend, and has the ImageNet ViT-B/16 preset behind the standard
download and cache. ``vit-keras`` 0.2.0 (last release 2021) was written for
tf.keras 2, is no longer maintained, and pulls in OpenCV, SciPy and validators.

Configurations (Dosovitskiy et al. 2021; DeiT's tiny/small):

=========  ======  ======  =====  =====
name       hidden  layers  heads  MLP
=========  ======  ======  =====  =====
vit-tiny      192      12      3    768
vit-small     384      12      6   1536
vit-b16       768      12     12   3072
=========  ======  ======  =====  =====

``patch_size`` (default 16; 8 suits small tiles) and ``num_layers`` can be
changed for CPU experiments. Inputs are normalised with mean 0.5 and std 0.5
per channel (``[0, 255] -> [-1, 1]``) inside the model, as in the seed ViT.
The class token's final state feeds the classifier.
"""

from __future__ import annotations

import keras
from keras import layers

from recaptcha_tf.models.backbone import BACKBONE
from recaptcha_tf.models.hub import load_hub_backbone, normalisation_layer, preset_normalisation
from recaptcha_tf.models.registry import register_model
from recaptcha_tf.models.transfer import classifier_head, rgb_input
from recaptcha_tf.models.weights import WeightsError, weights_kind

VIT_CONFIGS = {
    "vit-tiny": dict(hidden_dim=192, num_layers=12, num_heads=3, mlp_dim=768),
    "vit-small": dict(hidden_dim=384, num_layers=12, num_heads=6, mlp_dim=1536),
    "vit-b16": dict(hidden_dim=768, num_layers=12, num_heads=12, mlp_dim=3072),
}
IMAGENET_PRESETS = {"vit-b16": "vit_base_patch16_224_imagenet"}
# mean 0.5, std 0.5 per channel: [0, 255] -> [-1, 1] (the seed ViT); a preset with an image converter overrides it.
VIT_NORMALISATION = (1 / 127.5, -1.0)


def vit_classifier(
    config: str,
    input_shape,
    num_classes: int,
    *,
    patch_size: int = 16,
    num_layers: int | None = None,
    weights=None,
    output_activation: str = "softmax",
    dropout: float = 0.1,
) -> keras.Model:
    """``pixels -> [-1, 1] -> ViTBackbone -> class token -> dropout -> Dense``.

    Args:
        config: ``vit-tiny``, ``vit-small`` or ``vit-b16``.
        input_shape: ``(H, W, C)``; ``H`` and ``W`` must be multiples of ``patch_size``.
        weights: ``None``, ``"imagenet"`` (vit-b16 at 224x224, patch 16: keras-hub's
            ``vit_base_patch16_224_imagenet`` preset, downloaded and cached by keras-hub),
            another keras-hub ViT preset name or a local preset folder, or a local
            ``.weights.h5`` saved from the same backbone. The input normalisation follows
            the preset's image converter when it has one.
    """
    import keras_hub

    kind = weights_kind(weights)
    height, width, channels = input_shape
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"ViT input {height}x{width} is not a multiple of patch size {patch_size}; "
            f"use --image-size {max(patch_size, height // patch_size * patch_size)}."
        )
    params = dict(VIT_CONFIGS[config])
    if num_layers:
        params["num_layers"] = int(num_layers)
    if kind == "imagenet" and (
        config not in IMAGENET_PRESETS or (height, width, patch_size) != (224, 224, 16) or num_layers
    ):
        raise WeightsError(
            f"ImageNet weights exist for vit-b16 at 224x224 with patch 16 only "
            f"(keras-hub preset {IMAGENET_PRESETS['vit-b16']}); train {config} from scratch, "
            "or pass --weights with a preset name or folder."
        )
    backbone, preset = load_hub_backbone(
        keras_hub.models.ViTBackbone,
        weights,
        IMAGENET_PRESETS.get(config),
        config,
        dict(image_shape=(height, width, 3), patch_size=patch_size, **params),
    )
    if preset is not None and tuple(backbone.input_shape[1:3]) != (height, width):
        raise WeightsError(
            f"The preset {preset} takes {backbone.input_shape[1]}x{backbone.input_shape[2]} images; "
            f"train with --image-size {backbone.input_shape[1]}."
        )
    backbone.name = BACKBONE
    inputs = keras.Input(input_shape, name="pixels")
    x = rgb_input(inputs, channels)
    x = normalisation_layer(preset_normalisation(preset, VIT_NORMALISATION))(x)
    tokens = backbone(x)
    class_token = layers.Cropping1D((0, tokens.shape[1] - 1), name="class_token")(tokens)
    class_token = layers.Flatten(name="class_token_flat")(class_token)
    outputs = classifier_head(class_token, num_classes, output_activation, dropout, pooled=True)
    return keras.Model(inputs, outputs, name=config)


def _register(config: str):
    @register_model(config, blocks=r"^(transformer_block_\d+)(_|$)")
    def build(
        input_shape,
        num_classes,
        *,
        patch_size=16,
        num_layers=None,
        weights=None,
        output_activation="softmax",
        dropout=0.1,
    ):
        return vit_classifier(
            config,
            input_shape,
            num_classes,
            patch_size=patch_size,
            num_layers=num_layers,
            weights=weights,
            output_activation=output_activation,
            dropout=dropout,
        )

    build.__name__ = f"build_{config.replace('-', '_')}"
    build.__doc__ = f"{config}: {VIT_CONFIGS[config]}; see :func:`vit_classifier`."
    return build


for _name in VIT_CONFIGS:
    _register(_name)
