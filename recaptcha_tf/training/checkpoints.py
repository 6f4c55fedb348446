"""Kill-safe training state: backups that survive a kill at any instant, atomic best-model checkpoints, and the
``history.csv`` they keep in step.

A kill at any instant leaves a run that resumes: the backup is one file written under a temporary name and
renamed; the best model is saved the same way; on resume the history is repaired to match the restored epoch.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os

import keras

from recaptcha_tf.training.optimizers import build_optimizer

log = logging.getLogger("recaptcha_tf")


def best_logged_value(csv_path: str, monitor: str, mode: str = "min") -> float | None:
    """Best value of ``monitor`` in an existing CSV log (so a resumed checkpoint keeps the true best)."""
    if not os.path.exists(csv_path):
        return None
    with open(csv_path) as f:
        values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor) not in (None, "", "nan")]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def _fsync(path: str) -> None:
    """Flush ``path`` to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_history(csv_path: str) -> tuple[list[str], list[dict]]:
    """``(field names, rows)`` of a CSVLogger file; empty when there is none."""
    if not os.path.exists(csv_path):
        return [], []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def epochs_logged(csv_path: str) -> int:
    """How many distinct epochs ``history.csv`` records (every finished epoch of a run, resumed or not)."""
    return len({row["epoch"] for row in read_history(csv_path)[1] if row.get("epoch") not in (None, "")})


def _jsonable_logs(logs) -> dict:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose state survives a kill at any instant.

    Every epoch end writes the weights (optimizer included), the epoch number and
    that epoch's logs into *one* file under a temporary name, then renames it:
    the last good file becomes ``previous.weights.h5`` and the new one
    ``latest.weights.h5``. A kill mid-write leaves only the temporary file behind.

    On restore ``latest`` is tried, then ``previous``; an unreadable one is
    skipped with a warning, and with neither readable the phase starts afresh at
    ``initial_epoch`` (warning). With ``delete_checkpoint=False`` the backup stays
    after training and records that it finished (``done.json``), so a run killed
    afterwards (while evaluating) does not train again: the caller removes it
    once its results are written. ``history.csv`` is then made to match the
    restored epoch: rows of epochs that will run again are dropped, and the
    restored epoch's own row is re-added from the backup when a kill fell
    between the backup and the CSV log.

    Place it after callbacks that add metrics to the logs and before the CSV log.
    """

    EPOCH_ATTR = "recaptcha_tf_epoch"
    LOGS_ATTR = "recaptcha_tf_logs"

    def __init__(
        self, backup_dir: str, csv_path: str | None = None, initial_epoch: int = 0, delete_checkpoint: bool = True
    ):
        super().__init__(backup_dir, delete_checkpoint=delete_checkpoint)
        self.csv_path = csv_path
        self.initial_epoch = initial_epoch
        self._previous_path = os.path.join(backup_dir, "previous.weights.h5")
        self._partial_path = os.path.join(backup_dir, "partial.weights.h5")
        self._done_path = os.path.join(backup_dir, "done.json")
        self.restored_epoch: int | None = None

    @classmethod
    def restorable_epoch(cls, backup_dir: str) -> int | None:
        """The epoch a resume from ``backup_dir`` would go on after (``latest``, else ``previous``), read before
        training without loading weights; ``None`` without a readable backup. ``history.csv`` may hold one row
        fewer or more until the restore repairs it."""
        import h5py

        for name in ("latest.weights.h5", "previous.weights.h5"):
            try:
                with h5py.File(os.path.join(backup_dir, name), "r") as f:
                    if cls.EPOCH_ATTR in f.attrs:
                        return int(f.attrs[cls.EPOCH_ATTR])
            except (OSError, ValueError):
                continue
        return None

    # ------------------------------------------------------------------ save
    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        self._save_model(logs)

    def _save_model(self, logs=None):
        import h5py

        os.makedirs(self.backup_dir, exist_ok=True)
        self.model.save_weights(self._partial_path, overwrite=True)
        with h5py.File(self._partial_path, "a") as f:
            f.attrs[self.EPOCH_ATTR] = int(self._current_epoch)
            f.attrs[self.LOGS_ATTR] = json.dumps(_jsonable_logs(logs))
        _fsync(self._partial_path)
        if os.path.exists(self._weights_path):
            os.replace(self._weights_path, self._previous_path)
        os.replace(self._partial_path, self._weights_path)

    # --------------------------------------------------------------- restore
    def _read_state(self, path: str) -> tuple[int, dict | None]:
        """``(epoch, logs)`` recorded in a backup file (older backups: epoch from the Keras metadata file)."""
        import h5py

        with h5py.File(path, "r") as f:
            if self.EPOCH_ATTR in f.attrs:
                return int(f.attrs[self.EPOCH_ATTR]), json.loads(f.attrs.get(self.LOGS_ATTR, "{}"))
        with open(self._training_metadata_path) as f:  # written by keras.callbacks.BackupAndRestore
            return int(json.load(f)["epoch"]), None

    def on_train_begin(self, logs=None):
        self.restored_epoch, self.finished = None, False
        self.model._initial_epoch = None  # never carry an epoch over from an earlier fit (phase 1)
        candidates = [p for p in (self._weights_path, self._previous_path) if os.path.exists(p)]
        if not candidates:
            return
        build_optimizer(self.model)
        variables = list(self.model.weights) + list(getattr(self.model.optimizer, "variables", []))
        snapshot = [v.numpy() for v in variables]
        for path in candidates:
            try:
                epoch, epoch_logs = self._read_state(path)
                self.model.load_weights(path)
            except (OSError, ValueError, KeyError) as err:
                log.warning(
                    "Backup %s is unreadable (%s); falling back to the previous one.",
                    path,
                    str(err).splitlines()[0] if str(err) else type(err).__name__,
                )
                continue
            self.restored_epoch = epoch
            self.model._initial_epoch = epoch
            self._repair_history(epoch, epoch_logs)
            if os.path.exists(self._done_path) and path == self._weights_path:
                self.finished = True
                self.model._initial_epoch = max(epoch, int(self.params.get("epochs") or epoch))
                log.info(
                    "Restored the training state from %s: resuming after epoch %d; training had finished.", path, epoch
                )
            else:
                log.info("Restored the training state from %s: resuming after epoch %d.", path, epoch)
            return
        for v, value in zip(variables, snapshot):
            v.assign(value)
        log.warning(
            "No readable backup in %s; this training phase starts afresh at epoch %d.",
            self.backup_dir,
            self.initial_epoch + 1,
        )
        self._repair_history(self.initial_epoch, None)

    def _repair_history(self, epoch: int, epoch_logs: dict | None) -> None:
        """Keep the CSV rows of epochs before ``epoch`` (the last one from the backup when missing)."""
        if not self.csv_path:
            return
        fields, rows = read_history(self.csv_path)
        kept = {}
        for row in rows:
            if row.get("epoch", "").isdigit() and int(row["epoch"]) < epoch:
                kept[int(row["epoch"])] = row
        if epoch_logs and epoch - 1 not in kept and epoch >= 1:
            fields = fields or ["epoch", *sorted(epoch_logs)]
            kept[epoch - 1] = {"epoch": str(epoch - 1), **{k: str(v) for k, v in epoch_logs.items()}}
            log.info("Re-added epoch %d to %s from the backup.", epoch, self.csv_path)
        new_rows = [kept[e] for e in sorted(kept)]
        if new_rows == rows:
            return
        tmp = f"{self.csv_path}.tmp{os.getpid()}"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", restval="")
            writer.writeheader()
            writer.writerows(new_rows)
        os.replace(tmp, self.csv_path)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            import shutil

            shutil.rmtree(self.backup_dir)
        elif os.path.exists(self._weights_path):
            tmp = self._done_path + ".partial"
            with open(tmp, "w") as f:
                json.dump({"epoch": int(self._current_epoch)}, f)
            os.replace(tmp, self._done_path)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that writes to a temporary file and renames it, so a kill never leaves half a model.

    With ``csv_path``, the best value so far is re-read from the (repaired) CSV log
    when training begins, so a resumed run keeps the true best. With ``starting_point`` (the JSON
    :class:`StartingPoint` writes, when it exists) its value is the one to beat if it is better.

    With ``backup`` (the phase's :class:`SafeBackupAndRestore`, which runs first), a resumed phase whose restored
    epoch is the best one logged saves the restored weights as the best model: a kill between the backup and this
    checkpoint would otherwise keep an older model while the log names the restored epoch as the best. The save is
    idempotent (the restored weights are that epoch's weights).
    """

    def __init__(
        self,
        filepath: str,
        csv_path: str | None = None,
        starting_point: str | None = None,
        backup: SafeBackupAndRestore | None = None,
        **kwargs,
    ):
        super().__init__(filepath, **kwargs)
        self.csv_path, self.starting_point, self.backup = csv_path, starting_point, backup

    def on_train_begin(self, logs=None):
        if self.csv_path:
            best = best_logged_value(self.csv_path, self.monitor, self.mode)
            if best is not None:
                self.best = best
        if self.starting_point and os.path.isfile(self.starting_point):
            with open(self.starting_point) as f:
                start = json.load(f)
            if start.get("monitor") == self.monitor:
                better = min if self.mode == "min" else max
                self.best = start["value"] if self.best is None else better(self.best, start["value"])
        self._save_restored_best()

    def _save_restored_best(self) -> None:
        restored = self.backup.restored_epoch if self.backup is not None else None
        if not restored or self.backup.finished or not self.csv_path or self.best is None:
            return
        _, rows = read_history(self.csv_path)
        values = {}
        for row in rows:
            try:
                values[int(row["epoch"])] = float(row[self.monitor])
            except (KeyError, ValueError):
                continue
        earlier = [v for e, v in values.items() if e < restored - 1]
        if values.get(restored - 1) == self.best and self.best not in earlier:  # a tie kept the earlier model
            save_atomically(self.model, self.filepath, weights_only=self.save_weights_only)
            log.info("Saved the restored epoch %d as the best model (it is the best one logged).", restored)

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        save_atomically(self.model, filepath, weights_only=self.save_weights_only)


def save_atomically(model: keras.Model, filepath: str, weights_only: bool = False) -> str:
    """Save ``model`` (or only its weights) to ``filepath`` through ``partial-<name>`` beside it, synced, then
    renamed: a kill at any instant leaves the old file or the new one. Returns ``filepath``."""
    folder, name = os.path.split(filepath)
    os.makedirs(folder or ".", exist_ok=True)
    tmp = os.path.join(folder, "partial-" + name)
    if weights_only:
        model.save_weights(tmp, overwrite=True)
    else:
        model.save(tmp, overwrite=True)
    _fsync(tmp)
    os.replace(tmp, filepath)
    return filepath
