"""A run folder: every file one training run writes, named once.

A run folder ``OUT`` holds::

    OUT/config.json          the resolved plan: defaults, recipe and budget (a re-run with another plan is refused)
    OUT/split.json           the data split (train/val/test, by file or row name)
    OUT/model.keras          the best model: preprocessing, network and label names in one file
    OUT/history.csv          one row per finished epoch, appended across resumed runs
    OUT/backup/              kill-safe training state; a re-run resumes from it
    OUT/summary.json         the headline figures, written last (its presence marks a finished run)
    OUT/test_report.json     the evaluation on the test split
    OUT/export/              exported artifacts (SavedModel, TFLite, ONNX) and their sidecars

and TensorBoard logs go to ``LOGDIR/<run name>/``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import ClassVar

log = logging.getLogger("recaptcha_tf")


def write_json(obj, path: str) -> str:
    """Write ``obj`` to ``path`` as JSON atomically: a temporary file beside it, then a rename (a kill at any
    instant leaves the old file or the new one, never half of one). Returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """The folder of one run, and the path of each file in it.

    Example::

        run = RunFolder("models/tiles-cnn")
        run.model        # 'models/tiles-cnn/model.keras'
        run.read_json(RunFolder.SUMMARY)
    """

    path: str

    CONFIG: ClassVar[str] = "config.json"
    SPLIT: ClassVar[str] = "split.json"
    MODEL: ClassVar[str] = "model.keras"
    PARTIAL_MODEL: ClassVar[str] = "partial-model.keras"
    HISTORY: ClassVar[str] = "history.csv"
    BACKUP: ClassVar[str] = "backup"
    PHASE1_BACKUP: ClassVar[str] = "backup_phase1"
    PHASE1_WEIGHTS: ClassVar[str] = "phase1.weights.h5"
    PARTIAL_PHASE1_WEIGHTS: ClassVar[str] = "partial-phase1.weights.h5"
    PHASE2_PLAN: ClassVar[str] = "phase2_plan.json"
    SUMMARY: ClassVar[str] = "summary.json"
    TEST_REPORT: ClassVar[str] = "test_report.json"
    TEST_CONFUSION: ClassVar[str] = "test_confusion.png"
    TEST_PREDICTIONS: ClassVar[str] = "test_predictions.png"
    EXPORT: ClassVar[str] = "export"
    BALANCED_IMAGES: ClassVar[str] = "balanced_images"
    STARTING_POINT: ClassVar[str] = "starting_point.json"  # a trained reader's validation score before training

    # What `train --overwrite` removes: the training state, never exports or the user's own files.
    TRAINING_STATE: ClassVar[tuple[str, ...]] = (
        BACKUP,
        PHASE1_BACKUP,
        SPLIT,
        HISTORY,
        MODEL,
        PHASE1_WEIGHTS,
        PHASE2_PLAN,
        PARTIAL_MODEL,
        PARTIAL_PHASE1_WEIGHTS,
        CONFIG,
        SUMMARY,
        TEST_REPORT,
        TEST_CONFUSION,
        TEST_PREDICTIONS,
        STARTING_POINT,
    )

    def __post_init__(self):
        object.__setattr__(self, "path", os.fspath(self.path))

    def file(self, name: str) -> str:
        """The path of ``name`` inside the folder."""
        return os.path.join(self.path, name)

    @property
    def config(self) -> str:
        return self.file(self.CONFIG)

    @property
    def split(self) -> str:
        return self.file(self.SPLIT)

    @property
    def model(self) -> str:
        return self.file(self.MODEL)

    @property
    def history(self) -> str:
        return self.file(self.HISTORY)

    @property
    def summary(self) -> str:
        return self.file(self.SUMMARY)

    @property
    def test_report(self) -> str:
        return self.file(self.TEST_REPORT)

    @property
    def test_predictions(self) -> str:
        return self.file(self.TEST_PREDICTIONS)

    @property
    def export(self) -> str:
        return self.file(self.EXPORT)

    def backup(self, phase: int = 2) -> str:
        """The backup folder of fine-tuning phase ``phase`` (1: the frozen phase of a two-phase recipe)."""
        return self.file(self.PHASE1_BACKUP if phase == 1 else self.BACKUP)

    def read_json(self, name: str):
        """The JSON file ``name`` of this folder; ``None`` when there is none, or when it is damaged (not JSON:
        truncated or edited by hand), with a warning: the run then rebuilds it instead of failing."""
        path = self.file(name)
        if not os.path.isfile(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            log.warning("%s is damaged (%s); it is set aside and written again.", path, err)
            return None

    def write_json(self, obj, name: str) -> str:
        """Write ``obj`` as ``name`` in this folder, atomically; returns its path."""
        return write_json(obj, self.file(name))
