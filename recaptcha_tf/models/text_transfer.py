"""Starting a text reader from a trained one (``train --task text --weights universal``), whatever its charset.

The convolutions are loaded by the builder (``--weights`` of :func:`recaptcha_tf.models.text.build_crnn`); this
module carries the rest over: the sequence layers whose names and shapes match, and the output layer row by row.
A character both models know keeps its trained row; one the source lacks in this case (``A`` when the source reads
lower case) starts from the other case's row, and where the labels use only the case the source lacks (upper-case
labels, a lower-case reader), the unused case starts afresh; any other character keeps its fresh initialisation.
So a set whose charset is smaller, larger or of another case still starts from everything the source learned.
"""

from __future__ import annotations

import logging

import keras

log = logging.getLogger("recaptcha_tf")

OUTPUT_LAYER = "logits"


def _weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every layer with weights in the model's inner network, by name."""
    from recaptcha_tf.models import network_of

    return {layer.name: layer for layer in network_of(model).layers if layer.weights}


def _source_row(char: str, source: str, characters: str, used: str | None) -> int | None:
    """The output index (blank is 0) in the ``source`` characters that ``char`` of ``characters`` starts from:
    its own row, or its other case's. Where both cases are in ``characters`` and the labels (``used``) hold only
    one of them, only that one starts from the source: the two would otherwise get equal scores, and the arg-max
    would read every such letter in whichever case comes first (lower case for upper-case labels)."""
    other = char.swapcase()
    if used is not None and other != char and other in characters and char not in used and other in used:
        return None
    for candidate in (char, other):
        if candidate in source:
            return source.index(candidate) + 1
    return None


def transfer_text_weights(net: keras.Model, path: str, characters: str, used: str | None = None) -> dict:
    """Copy what fits from the trained text model at ``path`` (loaded in safe mode) into ``net``, in place.

    Args:
        net: a text model built by :func:`recaptcha_tf.models.build_text_model`, about to train.
        path: a ``.keras`` text model built the same way (its convolutions already loaded into ``net``).
        characters: ``net``'s characters, in output order.
        used: the characters the training labels hold (``None``: unknown); a letter whose other case the labels
            use and it does not starts afresh (:func:`_source_row`).

    Returns:
        ``{"layers": [names copied whole], "output_rows": rows taken from the source, "output_rows_new": rows left
        as initialised}``.
    """
    import recaptcha_tf.layers  # noqa: F401  (registers the custom layers for loading)
    from recaptcha_tf.models import label_names_layer

    source = keras.saving.load_model(path, safe_mode=True, compile=False)
    source_chars = "".join(label_names_layer(source).names)
    theirs, ours = _weighted_layers(source), _weighted_layers(net)
    copied = []
    for name, layer in ours.items():
        other = theirs.get(name)
        if name == OUTPUT_LAYER or other is None:
            continue
        values = other.get_weights()
        if [v.shape for v in values] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(values)
            copied.append(name)
    rows = {"output_rows": 0, "output_rows_new": 0}
    if OUTPUT_LAYER in ours and OUTPUT_LAYER in theirs:
        kernel, bias = theirs[OUTPUT_LAYER].get_weights()
        new_kernel, new_bias = ours[OUTPUT_LAYER].get_weights()
        if kernel.shape[0] == new_kernel.shape[0]:
            for j, char in enumerate("\0" + characters):  # index 0 is the CTC blank in both
                i = 0 if j == 0 else _source_row(char, source_chars, characters, used)
                if i is None:
                    rows["output_rows_new"] += 1
                    continue
                new_kernel[:, j], new_bias[j] = kernel[:, i], bias[i]
                rows["output_rows"] += 1
            ours[OUTPUT_LAYER].set_weights([new_kernel, new_bias])
    log.info(
        "Started from %s: %d layers whole (%s), %d of %d output rows from its characters",
        path,
        len(copied),
        ", ".join(copied) or "none",
        rows["output_rows"],
        len(characters) + 1,
    )
    return {"layers": copied, **rows}
