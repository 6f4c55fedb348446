"""``make demo`` / ``recaptcha-tf demo``: the text-CAPTCHA job on data the package generates itself.

1. generate ``count`` synthetic CAPTCHAs (training + validation) and a held-out
   set of ``holdout`` more with another seed;
2. train the CRNN (CNN + BiLSTM + CTC) with TensorBoard logs under ``logdir``;
3. evaluate on the held-out set: exact match, CER, a JSON report and a
   prediction grid PNG.
"""

from __future__ import annotations

import json
import os
import time

DEMO_IMAGE_SIZE = (32, 128)


def run_demo(
    out: str = "demo_run",
    logdir: str = "logs",
    count: int = 5000,
    holdout: int = 500,
    epochs: int | None = None,
    seed: int = 0,
) -> dict:
    """Run the demo and return its summary (also written to ``out/demo_summary.json``)."""
    from recaptcha_tf.data.generator import generate_captchas
    from recaptcha_tf.data.text.formats import load_text_dataset
    from recaptcha_tf.evaluation.workflow import evaluate_text_dataset
    from recaptcha_tf.training.text import train_text

    start = time.perf_counter()
    train_dir, holdout_dir = os.path.join(out, "data", "train"), os.path.join(out, "data", "holdout")
    if not os.path.isdir(train_dir) or len(os.listdir(train_dir)) < count:
        print(f"[demo] generating {count} training CAPTCHAs in {train_dir}", flush=True)
        generate_captchas(
            train_dir,
            count=count,
            length=(4, 6),
            charset="a-z0-9",
            size=(200, 50),
            seed=seed,
            preview=os.path.join(out, "generator_preview.png"),
        )
    if not os.path.isdir(holdout_dir) or len(os.listdir(holdout_dir)) < holdout:
        print(f"[demo] generating {holdout} held-out CAPTCHAs in {holdout_dir}", flush=True)
        generate_captchas(holdout_dir, count=holdout, length=(4, 6), charset="a-z0-9", size=(200, 50), seed=seed + 1000)
    generated = time.perf_counter() - start
    print("[demo] training the CRNN (TensorBoard: tensorboard --logdir " + logdir + ")", flush=True)
    summary = train_text(
        train_dir,
        os.path.join(out, "model"),
        model="crnn",
        charset="a-z0-9",
        image_size=DEMO_IMAGE_SIZE,
        epochs=epochs or 12,
        patience=0,
        fractions="90/10",
        seed=seed,
        logdir=logdir,
        run_name="demo-crnn",
        batch_size=16,
        learning_rate=1e-3,
        augment=False,
    )
    held_out = load_text_dataset(holdout_dir)
    report = evaluate_text_dataset(
        os.path.join(out, "model"),
        held_out,
        report=os.path.join(out, "holdout_report.json"),
        grid=os.path.join(out, "holdout_predictions.png"),
    )
    result = {
        "generated_images": count + holdout,
        "generate_seconds": round(generated, 1),
        "train_seconds": summary["train_seconds"],
        "epochs": summary["epochs_run"],
        "holdout_n": report["n"],
        "exact_match": round(report["exact_match"], 4),
        "cer": round(report["cer"], 4),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    with open(os.path.join(out, "demo_summary.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(
        f"[demo] held-out exact match {result['exact_match']:.4f}, CER {result['cer']:.4f} "
        f"on {report['n']} CAPTCHAs; total {result['total_seconds']:.0f} s",
        flush=True,
    )
    print(f"[demo] wrote {out}/holdout_predictions.png, {out}/holdout_report.json and TensorBoard logs in {logdir}/")
    return result
