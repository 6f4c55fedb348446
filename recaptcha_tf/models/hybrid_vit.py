"""The hybrid Vision Transformer: a pretrained CNN's feature map as the patch tokens.

Dosovitskiy et al. (2021, section 3.1, "Hybrid Architecture") feed a
transformer encoder with the feature map of a convolutional network instead of
raw pixel patches. With no pretrained ViT offline and a ViT from scratch at
0.41 top-1 on the tiles, this keeps the transformer head while the ImageNet
features come from a CNN we do have weights for::

    pixels [0, 255] -> the trunk's normalisation -> "backbone" (pretrained CNN, stride 32)
        -> (B, h*w, C) tokens -> Dense(hidden_dim) + learned position embedding
        -> num_layers x keras_hub TransformerEncoder (pre-norm) -> LayerNorm
        -> mean over tokens -> dropout -> Dense (softmax, or sigmoid for --multi-label)

A 224 px image gives 7x7 = 49 tokens. The trunk is the nested ``backbone``, so
the usual two phases apply: the encoder and head train with the trunk frozen,
then the trunk is fine-tuned too. ``--weights`` are the trunk's: a keras-hub
preset name or folder for ``trunk="efficientnet-lite0"``, or a ``.weights.h5``
file (or ``imagenet``) for ``trunk="mobilenetv2"`` with the matching ``alpha``.
"""

from __future__ import annotations

import keras
from keras import layers

from recaptcha_tf.layers import ImageNetPreprocessing
from recaptcha_tf.models.backbone import BACKBONE
from recaptcha_tf.models.efficientnet_lite import LITE_NORMALISATION, efficientnet_lite0_backbone
from recaptcha_tf.models.hub import normalisation_layer, preset_normalisation
from recaptcha_tf.models.registry import register_model
from recaptcha_tf.models.transfer import MOBILENET_ALPHAS, application_backbone, classifier_head, rgb_input

TRUNKS = ("efficientnet-lite0", "mobilenetv2")


def _trunk(trunk: str, height: int, width: int, weights, alpha: float):
    """``(backbone, normalisation layer)`` for the named convolutional trunk."""
    if trunk == "efficientnet-lite0":
        backbone, preset = efficientnet_lite0_backbone(weights)
        return backbone, normalisation_layer(preset_normalisation(preset, LITE_NORMALISATION))
    if trunk == "mobilenetv2":
        if float(alpha) not in MOBILENET_ALPHAS:
            raise ValueError(f"MobileNetV2 alpha must be one of {MOBILENET_ALPHAS}, not {alpha}.")
        backbone = application_backbone(
            keras.applications.MobileNetV2, "mobilenetv2", (height, width), weights, alpha=float(alpha)
        )
        return backbone, ImageNetPreprocessing("tf", name="normalise", dtype="float32")
    raise ValueError(f"trunk must be one of {TRUNKS}, not {trunk!r}.")


# Two epochs train the encoder and head on the frozen trunk (the encoder starts from scratch), then two fine-tune
# everything; 160 px gives a 5x5 token grid. Sized like the Lite0 recipe, for about 30 minutes on 2 CPU cores.
HYBRID_RECIPE = dict(
    image_size=(160, 160),
    batch_size=32,
    epochs=10,  # at most: as many as fit time_budget_minutes on this machine (train_classifier.time_budget)
    time_budget_minutes=30,
    freeze_epochs=2,
    learning_rate=1e-3,
    fine_tune_learning_rate=2e-4,
    unfreeze="all",
    label_smoothing=0.1,
)


@register_model(  # the trunk's blocks: block6a_... (EfficientNet-Lite0) or block_16_... (MobileNetV2)
    "vit-hybrid",
    pretrained=HYBRID_RECIPE,
    blocks=r"^(block_?\d+[a-z]?)(_|$)",
    cpu_bfloat16=False,  # its trunks' depthwise convolutions
)
def build_vit_hybrid(
    input_shape,
    num_classes,
    *,
    trunk: str = "efficientnet-lite0",
    alpha: float = 1.0,
    weights=None,
    hidden_dim: int = 192,
    num_layers: int = 4,
    num_heads: int = 3,
    mlp_dim: int = 384,
    dropout: float = 0.1,
    output_activation: str = "softmax",
):
    """Hybrid ViT: a CNN trunk's ``(h, w, C)`` feature map as ``h*w`` tokens for a small transformer.

    Args:
        input_shape: ``(H, W, C)`` pixels; the token grid is ``(H/32) x (W/32)``.
        trunk: ``"efficientnet-lite0"`` (keras-hub) or ``"mobilenetv2"`` (keras.applications, ``alpha``).
        weights: the trunk's pretrained weights (see the module docstring).
        hidden_dim, num_layers, num_heads, mlp_dim: the encoder (defaults: DeiT-tiny width, 4 layers).
    """
    import keras_hub

    height, width, channels = input_shape
    backbone, normalise = _trunk(trunk, height, width, weights, alpha)
    backbone.name = BACKBONE
    inputs = keras.Input(input_shape, name="pixels")
    x = normalise(rgb_input(inputs, channels))
    features = backbone(x)
    grid_h, grid_w, depth = features.shape[1:]
    if not grid_h or not grid_w:
        raise ValueError(f"Input {height}x{width} gives no static token grid.")
    tokens = layers.Reshape((grid_h * grid_w, depth), name="tokens")(features)
    tokens = layers.Dense(hidden_dim, name="token_projection")(tokens)
    tokens = layers.Add(name="add_positions")(
        [tokens, keras_hub.layers.PositionEmbedding(grid_h * grid_w, name="position_embedding")(tokens)]
    )
    tokens = layers.Dropout(dropout, name="token_dropout")(tokens)
    for i in range(num_layers):
        tokens = keras_hub.layers.TransformerEncoder(
            intermediate_dim=mlp_dim,
            num_heads=num_heads,
            dropout=dropout,
            activation="gelu",
            normalize_first=True,
            name=f"encoder_{i + 1}",
        )(tokens)
    tokens = layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(tokens)
    pooled = layers.GlobalAveragePooling1D(name="token_pool")(tokens)
    outputs = classifier_head(pooled, num_classes, output_activation, dropout, pooled=True)
    return keras.Model(inputs, outputs, name="vit_hybrid")
