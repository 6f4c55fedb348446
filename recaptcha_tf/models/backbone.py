"""The nested ``backbone`` model every pretrained-capable network holds, and how to find it.

Networks built here that can start from pretrained weights keep their trunk as a
nested Keras model named :data:`BACKBONE`; freezing, unfreezing and weight
loading (:mod:`recaptcha_tf.models.finetune`, :mod:`recaptcha_tf.models.weights`)
find it with :func:`find_backbone`. This module depends on nothing else in the
package, so those modules need not import each other.
"""

from __future__ import annotations

import keras

BACKBONE = "backbone"


def find_backbone(model: keras.Model) -> keras.Model:
    """The nested ``backbone`` model inside ``model`` (or inside its inner network)."""
    for layer in model.layers:
        if layer.name == BACKBONE and isinstance(layer, keras.Model):
            return layer
        if isinstance(layer, keras.Model):
            try:
                return find_backbone(layer)
            except ValueError:
                pass
    raise ValueError(
        f"Model {model.name!r} has no backbone to freeze; use a backbone model "
        "(resnet18/34/50, mobilenetv2, efficientnet*, vit-*), not the plain cnn."
    )
