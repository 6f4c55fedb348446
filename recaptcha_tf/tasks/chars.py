"""The ``chars`` task: single glyphs in class folders (small, grayscale)."""

from recaptcha_tf.tasks.registry import CLASSIFIER_OPTIONS, register_task

CHARS = register_task(
    "chars",
    "single characters in class folders (grayscale glyphs)",
    # glyph sets are small and easy, so the epochs follow the set's size (about `steps` updates, 8 to 30 epochs)
    # and training stops once validation accuracy has not improved for `patience` epochs. The default ResNet-18
    # is a quarter as wide as the paper's (width 16: about 0.7M parameters and 1/16 of the compute): glyph sets of
    # 10-60 classes need no ImageNet-sized network, and at width 64 a set of 15x30 digits took 140 s per epoch on
    # 2 cores. model_kwargs apply to the default model only; --model-arg wins.
    defaults={
        "model": "resnet18",
        "model_kwargs": {"width": 16},
        "image_size": (52, 32),
        "channels": 1,
        "resize": "pad",
        "epochs": None,
        "steps": 600,
        "epochs_range": (8, 30),
        "monitor": ("val_accuracy", "max"),
        "batch_size": 64,
        "learning_rate": 1e-3,
        "patience": 4,
    },
    tune_model="cnn",
    objectives={"val_macro_f1": "max", "val_accuracy": "max"},
    trial_metrics=("val_macro_f1", "val_accuracy", "val_loss"),
    report_keys=("n", "top1", "top3", "balanced_accuracy", "macro_f1", "challenge", "ms_per_image"),
    flip_invariant=False,  # a mirrored glyph is another character (or none)
    heads=("classifier",),
    workflows={
        "train": "recaptcha_tf.training.classifier:train_classifier",
        "prepare": "recaptcha_tf.data.class_split:prepare_folder_split",
        "evaluate": "recaptcha_tf.evaluation.workflow:evaluate_classifier",
    },
    options=CLASSIFIER_OPTIONS,
)
