"""A run folder's state: what ``--overwrite`` removes, and resuming or skipping a run.

A run folder (``OUT``) holds the split, the model, the backups and the summary of one training run
(see :mod:`recaptcha_tf.training`); re-running the same call resumes from them.
"""

from __future__ import annotations

import json
import logging
import os

from recaptcha_tf.data.sources import same_folder
from recaptcha_tf.utils.run_folder import RunFolder, write_json  # noqa: F401  (write_json lived here before 0.2.0)

log = logging.getLogger("recaptcha_tf")


RUN_STATE = RunFolder.TRAINING_STATE


def clear_run_state(out: str) -> list[str]:
    """Remove a run's training state from ``out`` (``train --overwrite``); returns what was removed.

    Only the names in :data:`RUN_STATE` directly inside ``out`` are removed (a link
    is removed, never followed), plus ``out/balanced_images`` when ``balance.json``
    shows this package wrote it. Anything else in ``out`` (exports, your files) stays.
    """
    import shutil

    removed = []
    names = list(RUN_STATE)
    if os.path.isfile(os.path.join(out, RunFolder.BALANCED_IMAGES, "balance.json")):
        names.append(RunFolder.BALANCED_IMAGES)
    for name in names:
        path = os.path.join(out, name)
        if os.path.islink(path) or os.path.isfile(path):
            os.remove(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        else:
            continue
        removed.append(name)
    if removed:
        log.info("--overwrite: removed %s from %s", ", ".join(removed), out)
    return removed


def weights_digest(weights) -> str | None:
    """SHA-256 of the starting weights' file (a ``.keras``/``.weights.h5`` file, or a run folder's model), so a
    run's ``config.json`` names the weights it started from wherever they were read; ``None`` for random or named
    (``imagenet``) weights."""
    from recaptcha_tf.utils.hashing import sha256_of

    if not isinstance(weights, (str, os.PathLike)):
        return None
    path = RunFolder(os.fspath(weights)).model if os.path.isdir(weights) else os.fspath(weights)
    return sha256_of(path) if os.path.isfile(path) else None


def changed_settings(out: str, config: dict) -> list[str]:
    """The settings of ``config`` that differ from the run ``out`` holds (its ``config.json``, once the run has
    trained: a backup, ``history.csv``, a model or a summary); ``[]`` for the same run, a fresh folder, or a
    folder whose run never finished an epoch. Keys one side lacks (a setting a newer version records) and the
    spelling of ``data`` do not count, nor the path of the starting weights when both record their digest
    (``weights_sha256``: the same file read from another copy of the package)."""
    run = RunFolder(out)
    state = (run.backup(1), run.backup(2), run.history, run.model, run.summary)
    stored = run.read_json(RunFolder.CONFIG)
    if not isinstance(stored, dict) or not any(os.path.exists(p) for p in state):
        return []
    config = json.loads(json.dumps(config))
    changed = []
    for key in sorted(set(stored) & set(config)):
        if key == "weights" and stored.get("weights_sha256") and config.get("weights_sha256"):
            continue  # compared by digest
        if key == "data":
            if not (stored[key] == config[key] or same_folder(stored[key], config[key])):
                changed.append(key)
        elif stored[key] != config[key]:
            changed.append(key)
    return changed


def finished_summary(out: str, config: dict) -> dict | None:
    """The stored summary when ``out`` already holds this very run, finished (a re-run after the end, or a kill
    after the backup was removed): the same config, ``summary.json`` written, no backup left. ``None`` otherwise."""
    run = RunFolder(out)
    if any(map(os.path.isdir, [run.backup(2), run.backup(1)])):
        return None
    stored, summary = run.read_json(RunFolder.CONFIG), run.read_json(RunFolder.SUMMARY)
    if not isinstance(stored, dict) or not isinstance(summary, dict):
        return None
    config = json.loads(json.dumps(config))
    stored_data, data = stored.pop("data", None), config.pop("data", None)
    if stored != config or not (stored_data == data or same_folder(stored_data, data)):
        return None
    log.info(
        "%s holds this run, finished: resuming after epoch %s; training had finished, nothing to do "
        "(--overwrite starts afresh).",
        out,
        summary.get("epochs_run"),
    )
    return {**summary, "epochs_this_session": 0}


def finish_run(out: str) -> None:
    """Remove the backup once the run's results are written: until then a killed run resumes, never retrains."""
    import shutil

    run = RunFolder(out)
    for phase in (1, 2):  # a kill between saving phase 1's weights and removing its backup can leave backup_phase1
        shutil.rmtree(run.backup(phase), ignore_errors=True)


def finished_epochs(out: str, epochs_now: int) -> int:
    """Finished epochs of the whole run, resumed parts included (``history.csv`` rows)."""
    from recaptcha_tf.training.callbacks import epochs_logged

    return max(epochs_logged(RunFolder(out).history), epochs_now)
