"""Output kinds: what a model's raw outputs mean, in one table.

A saved model says its output kind in its ``LabelNames`` layer (``softmax``, ``sigmoid``, ``ctc``, ``multihead``).
Each kind is one :class:`OutputKind` here: how its outputs become the dicts ``predict`` returns, which decisions an
export must agree on with Keras, what the export parity compares, and one line for an export's sidecar. A new head
kind (say a slider puzzle's gap offset) is one :func:`register_output_kind` call, from any module: prediction,
evaluation, export and its parity check then work for it unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np


class UnknownOutputKind(ValueError):
    """A model whose output kind is not registered (a plug-in that was not imported)."""


@dataclasses.dataclass(frozen=True)
class OutputKind:
    """One kind of model output.

    Attributes:
        name: the kind, as ``LabelNames(kind=...)`` records it.
        format: ``format(outputs, names, threshold, top_k=, beam_width=) -> list[dict]``: one dict per image from
            the raw outputs ``(B, ...)``.
        decide: ``decide(outputs, names, threshold) -> list``: what an application acts on, per image (an export
            must agree with Keras on it).
        describe: the sidecar's one-line description of the raw outputs.
        comparable: ``comparable(outputs) -> ndarray``: what the export parity compares numerically (e.g.
            probabilities rather than logits).
        sequence: the outputs are read as text (the ``text`` task's heads).
    """

    name: str
    format: Callable[..., list[dict]]
    decide: Callable[..., list]
    describe: str
    comparable: Callable[[np.ndarray], np.ndarray] = np.asarray
    sequence: bool = False


_KINDS: dict[str, OutputKind] = {}


def register_output_kind(
    name: str,
    format: Callable[..., list[dict]],
    decide: Callable[..., list],
    describe: str,
    comparable: Callable[[np.ndarray], np.ndarray] = np.asarray,
    sequence: bool = False,
) -> OutputKind:
    """Add an output kind (see :class:`OutputKind`); registering a name again replaces it."""
    kind = OutputKind(name, format, decide, describe, comparable, sequence)
    _KINDS[name] = kind
    return kind


def output_kind(name: str) -> OutputKind:
    """The registered output kind ``name``; :class:`UnknownOutputKind` names the registered ones."""
    if name not in _KINDS:
        raise UnknownOutputKind(
            f"Unknown output kind {name!r} (registered: {', '.join(sorted(_KINDS))}); import the module that "
            "registers it (recaptcha_tf.inference.outputs.register_output_kind)."
        )
    return _KINDS[name]


# --------------------------------------------------------------------------- the built-in kinds


def _top_k(outputs, names, threshold, top_k=3, beam_width=0, multi_label=False):
    results = []
    for probs in outputs:
        order = np.argsort(-probs)[:top_k]
        result = {
            "label": names[int(order[0])],
            "confidence": float(probs[order[0]]),
            "top_k": [(names[int(i)], float(probs[i])) for i in order],
        }
        if multi_label:
            result["labels"] = [names[i] for i in np.flatnonzero(probs >= threshold)]
        results.append(result)
    return results


def _text(kind):
    def format(outputs, names, threshold, top_k=3, beam_width=0):
        from recaptcha_tf.inference.abstention import text_confidence
        from recaptcha_tf.inference.decoding import decode_text_outputs

        return [  # the product from the unrounded values: the evaluation report's thresholds reproduce exactly
            {"text": text, "confidence": [round(c, 4) for c in conf], "text_confidence": text_confidence(conf)}
            for text, conf in decode_text_outputs(outputs, names, kind, beam_width)
        ]

    def decide(outputs, names, threshold):
        from recaptcha_tf.inference.decoding import decode_text_outputs

        return [text for text, _ in decode_text_outputs(outputs, names, kind)]

    return format, decide


def _ctc_probabilities(outputs):
    from recaptcha_tf.inference.decoding import softmax

    return softmax(outputs)


register_output_kind(
    "softmax",
    _top_k,
    lambda outputs, names, threshold: [int(i) for i in np.argmax(outputs, axis=-1)],
    "(B, C) class probabilities, names[i] for index i",
)
register_output_kind(
    "sigmoid",
    lambda outputs, names, threshold, top_k=3, beam_width=0: _top_k(outputs, names, threshold, top_k, multi_label=True),
    lambda outputs, names, threshold: [tuple(np.flatnonzero(p >= threshold).tolist()) for p in outputs],
    "(B, C) independent probabilities; labels with prob >= threshold",
)
register_output_kind(
    "ctc",
    *_text("ctc"),
    "(B, T, C+1) per-frame logits; index 0 is the CTC blank, index i+1 is names[i]",
    comparable=_ctc_probabilities,
    sequence=True,
)
register_output_kind(
    "multihead",
    *_text("multihead"),
    "(B, L, C+1) per-position probabilities; index 0 ends the text, i+1 is names[i]",
    sequence=True,
)
