"""The ``tiles`` task: reCAPTCHA v2 image tiles in class folders (single- or multi-label)."""

from recaptcha_tf.tasks.registry import CLASSIFIER_OPTIONS, register_task

TILES = register_task(
    "tiles",
    "reCAPTCHA v2 image tiles in class folders, softmax or multi-label sigmoid",
    # balance_up_to: unless told otherwise, training classes smaller than min(balance_up_to, the largest class) are
    # oversampled to that size with Augmentor (benchmarks/tiles.py: macro-F1 0.665 -> 0.716 on the real tiles).
    defaults={
        "model": "cnn",
        "image_size": (112, 112),
        "channels": 3,
        "resize": "stretch",
        "epochs": 26,
        "batch_size": 64,
        "learning_rate": 2e-3,
        "patience": 10,
        "balance_up_to": 500,
    },
    tune_model="cnn",
    objectives={"val_macro_f1": "max", "val_accuracy": "max"},
    trial_metrics=("val_macro_f1", "val_accuracy", "val_loss"),
    report_keys=(
        "n",
        "top1",
        "hamming_accuracy",
        "subset_accuracy",
        "top3",
        "balanced_accuracy",
        "macro_f1",
        "challenge",
        "ms_per_image",
    ),
    flip_invariant=True,
    heads=("classifier",),
    workflows={
        "train": "recaptcha_tf.training.classifier:train_classifier",
        "prepare": "recaptcha_tf.data.class_split:prepare_folder_split",
        "evaluate": "recaptcha_tf.evaluation.workflow:evaluate_classifier",
    },
    options=(*CLASSIFIER_OPTIONS, "tta"),  # flip TTA: a mirrored tile keeps its label
)
