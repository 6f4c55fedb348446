"""Turning model outputs into labels: CTC (greedy, beam search) and per-position heads.

Index conventions (see :class:`recaptcha_tf.layers.LabelNames`): for text
models output index 0 is the CTC blank / "no character" and index ``i + 1``
is ``characters[i]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def ctc_greedy_decode(probs: np.ndarray, characters: Sequence[str]) -> list[tuple[str, list[float]]]:
    """Best-path CTC decoding with per-character confidence.

    Takes the arg-max class of every frame, merges repeats, drops blanks (index 0).
    A character's confidence is the highest probability among the frames of the
    run that emitted it.

    Args:
        probs: per-frame probabilities ``(B, T, len(characters) + 1)``.
        characters: the vocabulary.

    Returns:
        One ``(text, confidences)`` pair per image.
    """
    best = probs.argmax(-1)
    top = probs.max(-1)
    out = []
    for path, conf in zip(best, top):
        text, confs, prev = [], [], 0
        for k, c in zip(path, conf):
            if k != 0 and k != prev:
                text.append(characters[k - 1])
                confs.append(float(c))
            elif k != 0 and k == prev:
                confs[-1] = max(confs[-1], float(c))
            prev = k
        out.append(("".join(text), confs))
    return out


def ctc_beam_search_decode(
    logits: np.ndarray, characters: Sequence[str], beam_width: int = 10
) -> list[tuple[str, float]]:
    """CTC beam search (``keras.ops.ctc_decode``) returning text and its sequence probability.

    Args:
        logits: per-frame logits ``(B, T, len(characters) + 1)``.

    Returns:
        One ``(text, probability)`` per image.
    """
    from keras import ops

    logits = np.asarray(logits, dtype=np.float32)
    lengths = np.full((logits.shape[0],), logits.shape[1], dtype=np.int32)
    paths, scores = ops.ctc_decode(
        logits, lengths, strategy="beam_search", beam_width=beam_width, top_paths=1, mask_index=0
    )
    paths = np.asarray(paths)[0]
    scores = np.asarray(scores).reshape(logits.shape[0], -1)[:, 0]
    texts = ["".join(characters[k - 1] for k in row if 0 < k <= len(characters)) for row in paths]
    return [(t, float(np.exp(s))) for t, s in zip(texts, scores)]


def multihead_decode(probs: np.ndarray, characters: Sequence[str]) -> list[tuple[str, list[float]]]:
    """Per-position arg-max; index 0 ("no character") ends the text.

    A reading that ends before the last position also depends on that end: its probability ``p_end`` is spread
    over the characters (each gets ``p_end ** (1 / n)`` more), as beam-search confidences are, so the product of a
    reading's confidences is the probability of the whole reading, end included.

    Args:
        probs: ``(B, L, len(characters) + 1)`` probabilities.

    Returns:
        ``(text, per-character confidences)`` per row.
    """
    out = []
    for row in probs:
        text, confs = [], []
        for p in row:
            k = int(p.argmax())
            if k == 0:
                if confs:
                    share = float(p[0]) ** (1.0 / len(confs))
                    confs = [c * share for c in confs]
                break
            text.append(characters[k - 1])
            confs.append(float(p[k]))
        out.append(("".join(text), confs))
    return out


def average_text_outputs(outputs: Sequence[np.ndarray], kind: str) -> np.ndarray:
    """One text output from several models' outputs on the same images, by averaging probabilities.

    CTC models' per-frame probabilities (softmax of their logits) are averaged frame by frame, and returned as
    log-probabilities, which :func:`decode_text_outputs` reads as logits; per-position (multi-head)
    probabilities are averaged position by position. The models must share characters and output shape.

    Args:
        outputs: one ``(B, T, len(characters) + 1)`` array per model (CTC logits, or multi-head probabilities).
        kind: ``"ctc"`` or ``"multihead"``.

    Returns:
        ``(B, T, len(characters) + 1)``: CTC log-probabilities, or multi-head probabilities.
    """
    shapes = {np.shape(o) for o in outputs}
    if len(shapes) != 1:
        raise ValueError(f"Cannot average text outputs of different shapes {sorted(shapes)}.")
    if kind == "ctc":
        return np.log(np.mean([softmax(np.asarray(o, np.float64)) for o in outputs], axis=0) + 1e-12)
    return np.mean(outputs, axis=0)


def vote_texts(decoded: Sequence[Sequence[tuple[str, Sequence[float]]]]) -> list[tuple[str, list[float]]]:
    """One reading per image from several models' readings: the text most models read, ties going to the text
    with the highest summed sequence confidence (the product of its character confidences).

    Args:
        decoded: one list of ``(text, confidences)`` pairs per model, all for the same images in order.

    Returns:
        ``(text, confidences)`` per image; the confidences are those of the most confident model that read it.
    """
    out = []
    for readings in zip(*decoded):
        votes: dict[str, list[float]] = {}
        best: dict[str, tuple[float, list[float]]] = {}  # text -> (its highest score, those confidences)
        for text, confs in readings:
            score = float(np.prod(confs)) if len(confs) else 0.0
            votes.setdefault(text, []).append(score)
            if text not in best or score > best[text][0]:
                best[text] = (score, list(confs))
        text = max(votes, key=lambda t: (len(votes[t]), sum(votes[t])))
        out.append((text, best[text][1]))
    return out


def decode_text_outputs(outputs: np.ndarray, characters: Sequence[str], kind: str, beam_width: int = 0):
    """Decode a text model's raw outputs: ``kind`` is ``"ctc"`` or ``"multihead"``.

    Returns ``(text, per-character confidences)`` pairs. With ``beam_width > 1``
    CTC text comes from beam search; where it reads what the greedy path reads, the
    confidences are the greedy alignment's, else each character gets ``p ** (1 / n)``
    of the beam's probability ``p``, so that their product is ``p``.
    """
    if kind == "multihead":
        return multihead_decode(outputs, characters)
    if kind != "ctc":
        raise ValueError(f"Not a text model output kind: {kind!r}.")
    greedy = ctc_greedy_decode(softmax(outputs), characters)
    if beam_width and beam_width > 1:
        beams = ctc_beam_search_decode(outputs, characters, beam_width)
        return [
            (text, list(g[1]) if g[0] == text else [float(p) ** (1.0 / max(len(text), 1))] * len(text))
            for g, (text, p) in zip(greedy, beams)
        ]
    return greedy
