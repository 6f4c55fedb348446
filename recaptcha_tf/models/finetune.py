"""Freezing and unfreezing a network's ``backbone`` for two-phase fine-tuning.

Phase 1 trains the head with the backbone frozen; phase 2 unfreezes the top
``N`` blocks (or all of them) and trains on with a lower learning rate. A
*block* is a residual / inverted-residual / transformer block, found by layer
name (``conv5_block3`` in ResNet-50, ``block_16`` in MobileNetV2, ``block6a``
in EfficientNet, ``stage4_block2`` in ResNet-18/34, ``transformer_block_12`` in
ViT); layers between blocks (stems, the last 1x1 conv, final norms) belong to
the block before them. Recompile the model after changing ``trainable``.
"""

from __future__ import annotations

import re

import keras

from recaptcha_tf.models.backbone import BACKBONE, find_backbone  # noqa: F401  (find_backbone: public here too)

# The generic block pattern, for backbones whose registry entry declares none (register_model(blocks=...)).
_BLOCK_NAME = re.compile(r"^(conv\d+_block\d+|block_?\d+[a-z]?|stage\d+_block\d+|transformer_block_\d+)(_|$)")


def _leaf_layers(backbone: keras.Model) -> list[keras.layers.Layer]:
    """The backbone's layers in order, looking inside layers that hold a stack (ViT's encoder)."""
    out = []
    for layer in backbone.layers:
        inner = getattr(layer, "encoder_layers", None)
        if inner:
            out.extend(inner)
            out.extend(sub for sub in layer._layers if sub not in inner)
        else:
            out.append(layer)
    return out


def backbone_blocks(backbone: keras.Model, pattern: str | None = None) -> list[tuple[str, list[keras.layers.Layer]]]:
    """``[(block name, layers), ...]`` in input-to-output order; ``"stem"`` holds what precedes block 1.

    ``pattern`` is the model's declared block pattern (:func:`recaptcha_tf.models.registry.model_blocks`);
    default: the generic one."""
    block_name = re.compile(pattern) if pattern else _BLOCK_NAME
    blocks: list[tuple[str, list]] = [("stem", [])]
    for layer in _leaf_layers(backbone):
        match = block_name.match(layer.name)
        if match and match.group(1) != blocks[-1][0]:
            blocks.append((match.group(1), []))
        blocks[-1][1].append(layer)
    return blocks


def freeze_backbone(model: keras.Model) -> int:
    """Freeze the backbone; returns the number of trainable parameters left (the head)."""
    find_backbone(model).trainable = False
    return trainable_parameters(model)


def unfreeze_backbone(
    model: keras.Model, top_blocks: int | str = "all", freeze_batchnorm: bool = True, blocks: str | None = None
) -> int:
    """Unfreeze all of the backbone, or its top ``top_blocks`` blocks; returns trainable parameters.

    ``blocks`` is the model's declared block pattern (see :func:`backbone_blocks`).

    With ``freeze_batchnorm`` (the default, as in Keras's transfer-learning guide)
    BatchNormalization layers stay frozen, which in Keras 3 also keeps them in
    inference mode: their pretrained moving statistics are not overwritten by
    the small batches of fine-tuning. (Calling the backbone with
    ``training=False`` is not enough inside a functional model: Keras 3 passes
    the outer ``training`` flag down and overrides it.)
    """
    backbone = find_backbone(model)
    backbone.trainable = True
    for layer in _leaf_layers(backbone):  # the setter skips layers already marked trainable
        layer.trainable = not (freeze_batchnorm and isinstance(layer, keras.layers.BatchNormalization))
    if top_blocks != "all":
        found = backbone_blocks(backbone, blocks)
        n = int(top_blocks)
        if n < 1:
            raise ValueError("top_blocks must be at least 1 (or 'all').")
        if len(found) < 2:  # only the stem: unfreezing "the top N blocks" would silently unfreeze everything
            from recaptcha_tf.models.registry import ModelConfigError

            raise ModelConfigError(
                f"Found no blocks in the backbone {backbone.name!r} (block pattern {blocks or _BLOCK_NAME.pattern!r}); "
                "use --unfreeze all."
            )
        for _, block_layers in found[: max(0, len(found) - n)]:
            for layer in block_layers:
                layer.trainable = False
    return trainable_parameters(model)


def trainable_parameters(model: keras.Model) -> int:
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
