"""Fine-tuning from a trained classifier (``train --task tiles --weights tiles``), new classes allowed.

The trained model is loaded in safe mode and kept whole (preprocessing, backbone, head, input size); only its output
layer is rebuilt when the classes differ. A class both know keeps its trained output column; a new class starts
from a fresh one. This is what keras-hub's task presets do with ``num_classes``, done row by row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np

from recaptcha_tf.layers import LabelNames

log = logging.getLogger("recaptcha_tf")

CLASSIFIER_HEAD = "predictions"


class WarmStartError(ValueError):
    """A trained model that cannot start this run (not a single-label classifier of this package)."""


def source_info(path: str) -> dict:
    """``{"names", "kind", "task", "image_size", "channels", "resize", "architecture"}`` of a trained classifier."""
    import recaptcha_tf.layers  # noqa: F401  (registers the custom layers)
    from recaptcha_tf.models import label_names_layer, network_of

    source = keras.saving.load_model(path, safe_mode=True, compile=False)
    labels, network = label_names_layer(source), network_of(source)
    return dict(
        names=list(labels.names),
        kind=labels.kind,
        task=labels.task,
        image_size=tuple(int(v) for v in network.input_shape[1:3]),
        channels=int(source.input_shape[-1]),
        resize=labels.resize,
        architecture=network.name,
    )


def classifier_from(path: str, class_names: Sequence[str], task: str) -> keras.Model:
    """A classifier of ``class_names`` that starts from the trained classifier at ``path``.

    Raises:
        WarmStartError: ``path`` is not a single-label classifier with a ``predictions`` output layer.
    """
    import recaptcha_tf.layers  # noqa: F401
    from recaptcha_tf.models import label_names_layer, network_of, with_raw_image_input

    source = keras.saving.load_model(path, safe_mode=True, compile=False)
    labels, network = label_names_layer(source), network_of(source)
    if labels.kind != "softmax":
        raise WarmStartError(f"--weights {path}: a {labels.kind} model; a single-label classifier is needed.")
    try:
        head = network.get_layer(CLASSIFIER_HEAD)
    except ValueError:
        raise WarmStartError(f"--weights {path}: its network has no {CLASSIFIER_HEAD!r} output layer.") from None
    old = [n.lower() for n in labels.names]
    if old != [n.lower() for n in class_names]:
        kernel, bias = head.get_weights()
        new_head = keras.layers.Dense(
            len(class_names), activation=head.activation, name=CLASSIFIER_HEAD, dtype="float32"
        )
        outputs = new_head(head.input)
        network = keras.Model(network.inputs, outputs, name=network.name)
        new_kernel, new_bias = new_head.get_weights()
        kept = 0
        for j, name in enumerate(class_names):
            if name.lower() in old:
                i = old.index(name.lower())
                new_kernel[:, j], new_bias[j] = kernel[:, i], bias[i]
                kept += 1
        new_head.set_weights([new_kernel.astype(np.float32), new_bias.astype(np.float32)])
        log.info("Started from %s: %d of %d classes keep their trained output column", path, kept, len(class_names))
    else:
        log.info("Started from %s: the same classes, every layer kept", path)
    label_layer = LabelNames(list(class_names), kind="softmax", task=task, resize=labels.resize, name="label_names")
    return with_raw_image_input(network, int(source.input_shape[-1]), labels.resize, label_layer, name=source.name)
