"""Training: the run skeleton and what it is made of.

* :mod:`.run_folder`: the files of a run folder, and finished or resumable runs;
* :mod:`.callbacks`: Keras callbacks (text metrics, starting point, plateau, time budget) and the standard set;
* :mod:`.checkpoints`: kill-safe backups, atomic best-model checkpoints, the history they keep in step;
* :mod:`.optimizers`: optimizers and learning-rate schedules;
* :mod:`.phases`: frozen and fine-tuning phases, distribution set-up;
* :mod:`.step_time`, :mod:`.precision <recaptcha_tf.models.precision>`, :mod:`.distribute`;
* :mod:`.classifier`, :mod:`.text`: the tile/char and text trainers.
"""

from recaptcha_tf.training.callbacks import (
    BEST_MODEL,
    BLANK_PLATEAU,
    AtomicModelCheckpoint,
    BlankPlateauWarning,
    PlateauAwareEarlyStopping,
    PredictionSamples,
    SafeBackupAndRestore,
    TextMetrics,
    TimeBudget,
    best_logged_value,
    build_optimizer,
    cer_then_loss,
    cosine_schedule,
    epochs_logged,
    make_optimizer,
    read_history,
    standard_callbacks,
)

__all__ = [
    "AtomicModelCheckpoint",
    "BEST_MODEL",
    "BLANK_PLATEAU",
    "BlankPlateauWarning",
    "PlateauAwareEarlyStopping",
    "PredictionSamples",
    "SafeBackupAndRestore",
    "TextMetrics",
    "TimeBudget",
    "best_logged_value",
    "build_optimizer",
    "cer_then_loss",
    "cosine_schedule",
    "epochs_logged",
    "make_optimizer",
    "read_history",
    "standard_callbacks",
]
