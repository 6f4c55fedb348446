"""The Python API in two calls, as short as the command line::

    import recaptcha_tf

    run = recaptcha_tf.train(task="tiles", data="data/shapes", epochs=3)   # a run folder, trained (resumable)
    print(run.summary["test"]["top1"])
    model = recaptcha_tf.load(run.path)                                     # or a .keras / .onnx / .tflite file
    for result in model.predict(["tile.png", numpy_image, pil_image]):
        print(result["label"], result["confidence"])

``train`` takes the options of ``recaptcha-tf train`` by their Python names (``image_size=(48, 192)``,
``model="resnet18"``, ``weights="imagenet"``, ...) and checks them against the task, as the command line does;
``load`` gives a :class:`Model` whose ``predict`` takes file paths, encoded bytes, NumPy arrays ``(H, W[, C])``
``uint8`` or PIL images.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Sequence


@dataclasses.dataclass
class Run:
    """A trained run folder: where it is, and the summary its training wrote (``summary.json``)."""

    path: str
    summary: dict

    def load(self, runtime: str = "keras") -> Model:
        """The run's model, ready to predict."""
        return load(self.path, runtime=runtime)


class Model:
    """A saved model behind one compiled predictor (:class:`recaptcha_tf.inference.Inference`).

    Attributes:
        info: what the model expects and produces (:class:`recaptcha_tf.inference.ModelInfo`): class names or
            characters, task, input size, channels.
    """

    def __init__(self, inference):
        self.inference = inference
        self.info = inference.info

    def predict(self, images, top_k: int = 3, tta: str = "none", min_confidence="model") -> list[dict]:
        """One dict per image: ``label``, ``confidence`` and ``top_k`` for classifiers (``labels`` too for
        multi-label models); ``text``, per-character ``confidence`` and ``text_confidence`` (their product) for
        text models. With ``min_confidence`` (:mod:`recaptcha_tf.inference.abstention`; ``"model"``: the threshold
        stored in the model, if any; ``None``: never abstain) text results get ``accepted``, and a classifier
        whose best object class scores below it answers ``other`` (``abstained``).

        ``images`` is one image or a list of them: file paths, encoded bytes, ``uint8`` NumPy arrays
        ``(H, W)`` / ``(H, W, C)``, or PIL images; or a ``uint8`` batch ``(N, H, W, C)`` (a list of results).
        Arrays and PIL images are encoded losslessly (PNG) and go through the same decoding and resizing as
        training.
        """
        from recaptcha_tf.inference.abstention import abstention_top_k, apply_min_confidence, resolve_min_confidence
        from recaptcha_tf.inference.predictor import predict

        if getattr(images, "ndim", 0) == 4:  # a uint8 batch (N, H, W, C): one image per row
            images = list(images)
        single = not isinstance(images, (list, tuple))
        threshold = resolve_min_confidence("none" if min_confidence is None else min_confidence, self._stored())
        sources = [_source(image) for image in ([images] if single else images)]
        results = predict(self.inference, sources, abstention_top_k(top_k, threshold), tta=tta)
        apply_min_confidence(results, threshold, self.info.names, top_k)
        return results[0] if single else results

    def select_cells(self, image, target: str, grid: str = "3x3", tta: str = "none") -> dict:
        """Solve a grid challenge ("select all images with a bus") with a tile classifier.

        ``image`` is the whole grid (a path, encoded bytes, a ``uint8`` array ``(H, W, C)`` or a PIL image), cut
        into ``grid`` cells (``"3x3"``, ``"4x4"``, any ``"RxC"``; row-major; sides that do not divide differ by a
        pixel); ``target`` is one of the model's classes. Cells are picked by the model's stored rule
        (:func:`recaptcha_tf.inference.abstention.grid_rule`: its challenge threshold on the target's
        probability when it stores one, as the shipped ``tiles`` model does), on each cell's probabilities
        (``tta="flip"`` averages them with the mirror image's).

        Returns:
            ``{"target", "grid", "cells", "probabilities", "rule"}``: the picked cells numbered from 1 (top-left,
            row-major), every cell's target probability in ``[0, 1]``, and the rule in words.

        Raises:
            ValueError: a text model, a target the model does not know, or a malformed ``grid``.
        """
        import numpy as np

        from recaptcha_tf.data.images import load_image_array
        from recaptcha_tf.evaluation.challenge import pick_cells, split_grid
        from recaptcha_tf.inference.abstention import background_index, grid_rule

        names = list(self.info.names)
        if self.info.kind not in ("softmax", "sigmoid"):
            raise ValueError(f"select_cells() needs a tile classifier; this is a {self.info.task} model.")
        if target not in names:
            raise ValueError(f"{target!r} is not one of the model's classes: {', '.join(names)}.")
        try:
            rows, cols = (int(v) for v in str(grid).lower().split("x"))
        except ValueError:
            raise ValueError(f"grid must be ROWSxCOLS, e.g. 3x3 or 4x4, not {grid!r}.") from None
        pixels = load_image_array(_source(image), self.info.channels)  # within the decode pixel limit
        cells = np.stack([self.inference.preprocess_array(cell) for cell in split_grid(pixels, rows, cols)])
        probs = np.asarray(self.inference.run_tta(cells, tta))
        threshold, min_confidence, rule = grid_rule(self.info)
        picked = pick_cells(probs, names.index(target), threshold, min_confidence, background_index(names))
        return {
            "target": target,
            "grid": f"{rows}x{cols}",
            "cells": [i + 1 for i in picked],
            "probabilities": [round(float(p), 6) for p in probs[:, names.index(target)]],
            "rule": rule,
        }

    def _stored(self) -> float | None:
        return getattr(self.info, "min_confidence", None)

    def __repr__(self) -> str:
        return f"Model(task={self.info.task!r}, kind={self.info.kind!r}, classes={len(self.info.names)})"


def _source(image):
    """A path or encoded bytes as they are; an array or PIL image as PNG bytes."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    from PIL import Image

    if not isinstance(image, Image.Image):
        import numpy as np

        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise TypeError(f"Images as arrays must be uint8 pixels (0-255), not {array.dtype}.")
        image = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def load(model: str, runtime: str = "keras") -> Model:
    """Load a run folder, a ``.keras`` file (in Keras safe mode), an exported ``.onnx`` / ``.tflite`` file, or a
    shipped model by name (``recaptcha-tf models`` lists them; a path that exists wins over a name).

    ``runtime`` picks how a run folder is run: ``keras``, or its ``onnx`` / ``tflite`` export
    (``RUN/export/``). An exported file given directly runs in its own runtime.
    """
    from recaptcha_tf.inference.loading import resolve_model_source
    from recaptcha_tf.inference.predictor import load_inference

    path = resolve_model_source(model)
    for name in ("onnx", "tflite"):
        if runtime == "keras" and os.path.isfile(path) and path.endswith(f".{name}"):
            runtime = name
    return Model(load_inference(path, runtime))


def read(images, model: str = "universal", min_confidence: float | None = None) -> list[dict] | dict:
    """Read text CAPTCHAs with no training: the shipped universal reader (or any text model: a name, run folder or
    ``.keras`` file). Returns, per image, ``text``, ``text_confidence`` and per-character ``confidence`` (and
    ``accepted`` with ``min_confidence``); one dict for one image.

    Example::

        recaptcha_tf.read("captcha.png")    # {"text": "x7fk2", "text_confidence": 0.93, ...}
    """
    from recaptcha_tf.inference.loading import resolve_model_source
    from recaptcha_tf.utils.run_folder import RunFolder

    path = resolve_model_source(model)
    if os.path.isdir(path) and os.path.isfile(RunFolder(path).model):
        path = RunFolder(path).model  # a run folder: its model file says when it was trained again
    key = (os.path.realpath(path), os.path.getmtime(path))
    reader = _readers.get(key)  # a run trained again into the same folder is loaded again
    if reader is None:
        reader = _readers[key] = load(model)
    if reader.info.task != "text":
        raise ValueError(f"read() takes a text model; {model!r} is a {reader.info.task} model (use load().predict).")
    return reader.predict(images, min_confidence=min_confidence)


_readers: dict[tuple, Model] = {}  # (the model file's real path, its modification time) -> the loaded reader


def train(task: str | None = None, data: str | Sequence[str] | None = None, out: str | None = None, **options) -> Run:
    """Train (or resume) a run of ``task`` on ``data`` into ``out`` (default ``models/<task>``) and return it.

    ``task=None`` reads it from how ``data`` is stored, as ``recaptcha-tf train`` without ``--task`` does
    (:func:`recaptcha_tf.data.detect.infer_task`; one log line says what it chose and why).

    ``options`` are the keyword arguments of the task's trainer (``training.classifier.train_classifier`` for
    ``tiles`` and ``chars``, ``training.text.train_text`` for ``text``); one it does not take
    (``mix`` for ``text``) is a :class:`recaptcha_tf.tasks.TaskError` naming the ones it does.
    """
    import inspect

    from recaptcha_tf.data.detect import choose_task
    from recaptcha_tf.tasks import TaskError, get_task

    if data is None:
        raise TypeError("train() needs data: a data folder or file (or a list of Parquet files).")
    task = choose_task(task, data, labels=options.get("labels_csv"), multi_label=bool(options.get("multi_label")))
    spec = get_task(task)
    taken = inspect.signature(spec.workflow("train")).parameters
    unknown = sorted(name for name in options if name not in taken or name in ("data", "out", "task"))
    if unknown:
        takes = ", ".join(name for name in taken if name not in ("data", "out", "task"))
        raise TaskError(f"{', '.join(unknown)}: not an option of task {task!r}, which takes: {takes}.")
    out = out or os.path.join("models", task)
    summary = spec.run_workflow("train", data, out, task=task, **options)
    return Run(path=summary.get("out", out), summary=summary)
