"""The ``text`` task: text CAPTCHAs, labels from file names or Parquet, read by CTC or per-character heads."""

from recaptcha_tf.tasks.registry import register_task

TEXT = register_task(
    "text",
    "text CAPTCHAs named by their label (or Parquet), CRNN+CTC or per-character heads",
    # the input is fitted to the training images (recaptcha_tf.data.text.fit) unless --image-size is given; the budget
    # is optimizer steps, so small and large sets get the same number of updates, cut into "evaluations" epochs of
    # equal steps over the repeated training set (validation runs that often); the best checkpoint and early
    # stopping follow validation CER, ties broken by validation loss (training.cer_then_loss), and early stopping
    # waits a quarter of the evaluations (never while the model reads blanks; not at all when fewer than
    # "early_stopping_min_validation" images validate: training.text.default_patience). "steps" is the budget for a
    # 48x192 or larger input (a smaller one gets as many more as take the same pixels), and a slow machine as many as
    # take "time_budget_minutes" (training.step_time; not with --steps). Steps timed on a quiet machine can run slower
    # later (a loaded host): such a run then stops at the end of the epoch before one that would end past
    # "time_limit_factor" times the budget (training.TimeBudget; validation and checkpoints take the rest).
    # Validation during training reads at most "validation_images" of the validation split (a seeded sample;
    # train_text.validation_sample). --weights here is a text model (synthetic pretraining, same domain), not an
    # ImageNet backbone: no frozen phase, the full learning rate ("weights_freeze_epochs"; benchmarks/text_synthetic.py
    # measured the transfer recipe's 3 frozen evaluations and a tenth of the rate underfitting, 0.824 against 0.976
    # without them on 100 labels).
    defaults={
        "model": "crnn",
        "image_size": None,
        "channels": 3,
        "resize": "stretch",
        "colour": "ink",
        "steps": 4000,
        "time_budget_minutes": 15,
        "time_limit_factor": 4 / 3,
        "evaluations": 20,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "patience_fraction": 0.25,
        "early_stopping_min_validation": 50,
        "validation_images": 512,
        "weights_freeze_epochs": 0,
    },
    tune_model="crnn",
    objectives={"val_cer": "min", "val_exact_match": "max"},
    trial_metrics=("val_cer", "val_exact_match", "val_loss"),
    report_keys=("n", "exact_match", "cer"),
    sequence=True,
    heads=("ctc", "multihead"),
    workflows={
        "train": "recaptcha_tf.training.text:train_text",
        "prepare": "recaptcha_tf.data.text.task_data:text_task_data",
        "evaluate": "recaptcha_tf.evaluation.workflow:evaluate_text",
    },
    # the task-specific command-line options it takes (recaptcha_tf.cli refuses the other tasks' ones): what
    # training.text.train_text and evaluation.workflow.evaluate_text take and the classifiers' workflows do not
    options=(
        "charset",
        "case",
        "label_pattern",
        "val_data",
        "steps",
        "warmup_fraction",
        "curriculum",
        "plateau_extension",
        "colour",
        "image_column",
        "label_column",
        "beam_width",
    ),
)
