"""Put a finished run's model into the package as a shipped model (``tools/build_universal.py``, ``build_tiles.py``).

The model is saved without its optimizer state (a third of a checkpoint), checked against the 10 MB a shipped file
may weigh, given a stub model card until the build writes the real one, and entered with its SHA-256 in
``recaptcha_tf/pretrained/manifest.json``.
"""

from __future__ import annotations

import os

MAX_BYTES = 10 * 1000 * 1000  # what a shipped model file may weigh


def strip_optimizer(source: str, target: str) -> None:
    """Save the model at ``source`` without its optimizer state to ``target`` (through a temporary name)."""
    import keras

    import recaptcha_tf.layers  # noqa: F401  (registers the custom layers)

    model = keras.saving.load_model(source, safe_mode=True, compile=False)
    model.save(target + ".tmp.keras")
    os.replace(target + ".tmp.keras", target)


def ship_run(
    run: str, shipped: str, name: str, version: str, task: str, description: str, max_bytes: int = MAX_BYTES
) -> str:
    """Ship ``run``'s ``model.keras`` as ``shipped/model.keras`` under ``name``; returns the shipped file's path.

    Raises:
        SystemExit: when the file would weigh more than ``max_bytes`` (nothing is entered in the manifest).
    """
    from recaptcha_tf.utils.shipped import write_manifest_entry

    os.makedirs(shipped, exist_ok=True)
    target = os.path.join(shipped, "model.keras")
    strip_optimizer(os.path.join(run, "model.keras"), target)
    size = os.path.getsize(target)
    if size > max_bytes:
        os.remove(target)
        raise SystemExit(f"error: {run}'s model weighs {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB allowed")
    card = os.path.join(shipped, "MODEL_CARD.md")
    if not os.path.isfile(card):  # a stub until the build writes the card from the run's reports
        with open(card, "w", encoding="utf-8") as f:
            f.write(f"# {name} v{version}\n\nSee docs/shipped-models.md.\n")
    write_manifest_entry(
        name, target, task=task, version=version, description=description, card=card, folder=os.path.dirname(shipped)
    )
    return target
