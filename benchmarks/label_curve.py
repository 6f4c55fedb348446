"""How many labels does it take to break a text CAPTCHA design? Exact match against labelled training images.

    python benchmarks/label_curve.py --data SET [--counts 0,25,50,100,200,500,all] [--minutes 5] [--case lower]

One seeded test split of ``SET`` (``--test-share``, at least 50 images) is fixed; the rest is the pool. For each
count N, the first N images of a seeded order of the pool (nested: the 50 hold the 25) are split 80/20 into
train/val (the first fifth validates, so the training parts alone are not nested), and two runs train on them with
the defaults, each held to ``--minutes`` of training steps (``--time-budget``): from scratch, and from the shipped
``universal`` reader (``--weights universal``). Both are scored on the same test split (case-insensitively with
``--case lower``). N = 0 is the universal reader zero-shot (from scratch reads nothing: 0). A call cut off resumes:
finished points are read back from their run folders under ``--work``, and a point's run cut off mid-training
resumes where it stopped. Writes ``benchmarks/results/label_curve_<name>.json`` (rows, machine, commands), a PNG
plot beside it and a Markdown table.
Each point also says the share of test images kept when only readings right 99% of the time are accepted
(``kept_at_99``: the evaluation report's abstention, ``--min-confidence`` at the lowest such threshold).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, machine, table, write_results

STARTS = ("scratch", "universal")


def counts_for(text: str, pool: int) -> list[int]:
    out = []
    for item in text.split(","):
        n = pool if item.strip() == "all" else int(item)
        if n <= pool and n not in out:
            out.append(n)
    return out


def manifest(root: str, names: list[str], labels: list[str], train, val, test, path: str) -> str:
    from recaptcha_tf.data.splits import Split, save_manifest

    def entries(indices):
        return [(os.path.join(root, names[i]), labels[i]) for i in indices]

    return save_manifest(Split([], entries(train), entries(val), entries(test), root=root), path)


def check_settings(work: str, args) -> None:
    """Record what fixes ``work``'s splits and budgets the first time; refuse another call that differs, since its
    finished points would be read back (and a new test split could hold images an old point trained on)."""
    settings = {
        "data": os.path.abspath(args.data),
        "seed": args.seed,
        "test_share": args.test_share,
        "case": args.case,
        "minutes": None if args.steps else args.minutes,
        "steps": args.steps,
        "model_arg": json.loads(args.model_arg),
        "train_arg": json.loads(args.train_arg),
    }
    path = os.path.join(work, "settings.json")
    if os.path.isfile(path):
        with open(path) as f:
            saved = json.load(f)
        changed = sorted(k for k in settings if k in saved and saved[k] != settings[k])
        if changed:
            raise SystemExit(
                f"error: {work} holds a label curve made with other settings ({', '.join(changed)}: "
                f"{', '.join(repr(saved[k]) for k in changed)}); pass another --work, or remove it"
            )
    write_results("settings", settings, folder=work)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a folder of text CAPTCHAs named by label")
    parser.add_argument("--name", default=None, help="results name (default: the data folder's name)")
    parser.add_argument("--counts", default="0,25,50,100,200,500,all")
    parser.add_argument("--starts", default=",".join(STARTS), help="scratch, universal (comma-separated)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training minutes per point (--time-budget)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per point instead (tests)")
    parser.add_argument("--case", default="lower", choices=("keep", "lower", "upper"))
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="models/bench-label-curve")
    parser.add_argument("--results", default=RESULTS, help="folder of the JSON, PNG and Markdown outputs")
    parser.add_argument("--model-arg", default="{}", help="JSON builder arguments of every run (tests' tiny models)")
    parser.add_argument(
        "--train-arg",
        default="{}",
        help="JSON keyword arguments of recaptcha_tf.train for every trained point, e.g. '{\"patience\": 0}' "
        "(a lever measured against the defaults; recorded in the results)",
    )
    args = parser.parse_args(argv)

    import recaptcha_tf
    from recaptcha_tf.data.text.formats import load_text_dataset
    from recaptcha_tf.evaluation.workflow import evaluate_text_dataset
    from recaptcha_tf.utils.run_folder import RunFolder
    from recaptcha_tf.utils.shipped import shipped_models

    name = args.name or os.path.basename(os.path.normpath(args.data))
    dataset = load_text_dataset(args.data, case=args.case)
    n = len(dataset.names)
    order = np.random.default_rng(args.seed).permutation(n).tolist()
    test_count = max(50, int(round(args.test_share * n))) if n > 100 else max(1, n // 4)
    test, pool = order[:test_count], order[test_count:]
    test_set = dataset.subset(test)
    starts = [s for s in args.starts.split(",") if s]
    if "universal" in starts and "universal" not in shipped_models():
        raise SystemExit("error: no shipped 'universal' reader in this version; pass --starts scratch")
    reader = shipped_models().get("universal")
    train_arg = json.loads(args.train_arg)
    reserved = sorted(set(train_arg) & {"task", "data", "out", "split", "weights", "case", "seed"})
    if reserved:
        raise SystemExit(f"error: --train-arg may not set {', '.join(reserved)}: the curve sets them per point")
    work = os.path.join(args.work, name)
    check_settings(work, args)
    rows = []
    for count in counts_for(args.counts, len(pool)):
        chosen = pool[:count]
        val_count = max(1, round(0.2 * count)) if count else 0
        train, val = chosen[val_count:], chosen[:val_count]
        for start in starts:
            row = {"labels": count, "start": start}
            if count == 0:
                if start == "scratch":
                    row.update(exact_match=0.0, cer=1.0, train_seconds=0.0, note="no labels, no training")
                else:
                    report = evaluate_text_dataset("universal", test_set, case=args.case)
                    row.update(exact_match=report["exact_match"], cer=report["cer"], train_seconds=0.0)
                    row.update(kept_at_99=kept_at_99(report))
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            out = os.path.join(work, f"{start}-{count}")
            split = manifest(
                os.path.abspath(dataset_root(args.data)), dataset.names, dataset.labels, train, val, test,
                os.path.join(work, f"split-{count}.json"),
            )  # fmt: skip
            options = dict(split=split, case=args.case, seed=args.seed, logdir=None)
            options |= {"steps": args.steps} if args.steps else {"time_budget": args.minutes}
            options["model_kwargs"] = json.loads(args.model_arg)  # the universal reader's own architecture: {}
            options |= train_arg
            if start == "universal":
                options["weights"] = "universal"
            begin = time.perf_counter()
            summary = RunFolder(out).read_json(RunFolder.SUMMARY)  # finished in an earlier call: the curve resumes
            if summary is not None and start == "universal" and not same_reader(out, reader):
                print(f"{out}: trained from another version of universal; training it again", flush=True)
                shutil.rmtree(out)
                summary = None
            if summary is not None:
                wall = None
            else:  # a run cut off in an earlier call resumes where it stopped
                summary = recaptcha_tf.train(task="text", data=args.data, out=out, **options).summary
                wall = round(time.perf_counter() - begin, 1)
            test_report = summary.get("test", {})
            row.update(
                exact_match=test_report.get("exact_match"),
                cer=test_report.get("cer"),
                train_seconds=round(summary.get("train_seconds", 0.0), 1),  # fitting only, as the run records it
                command_seconds=wall,  # this call's wall time of the point (None: read back from an earlier call)
                steps=summary.get("steps"),
                kept_at_99=kept_at_99(RunFolder(out).read_json(RunFolder.TEST_REPORT) or {}),
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    payload = {
        "benchmark": "label_curve",
        "data": os.path.abspath(args.data),
        "test_images": len(test),
        "pool_images": len(pool),
        "case": args.case,
        "seed": args.seed,
        "universal_version": reader.version if reader and "universal" in starts else None,
        "minutes_per_point": None if args.steps else args.minutes,
        "steps_per_point": args.steps,
        "train_arg": train_arg,
        "command": "python benchmarks/label_curve.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    payload["table"] = table(rows, ["labels", "start", "exact_match", "cer", "kept_at_99", "train_seconds"])
    print("wrote", write_results(f"label_curve_{name}", payload, folder=args.results))
    plot(rows, os.path.join(args.results, f"label_curve_{name}.png"), name)
    print(payload["table"])
    return 0


def same_reader(out: str, reader) -> bool:
    """Whether the finished point ``out`` started from the shipped ``reader`` as it is now (its config records the
    starting weights' digest; a point trained from an earlier version, or before digests were recorded, is not)."""
    from recaptcha_tf.utils.run_folder import RunFolder

    config = RunFolder(out).read_json(RunFolder.CONFIG) or {}
    return reader is not None and config.get("weights_sha256") == reader.sha256


def kept_at_99(report: dict) -> float | None:
    """The share of test images whose readings are kept when only those right 99% of the time are accepted
    (the evaluation report's ``abstention``: ``--min-confidence`` at the lowest such threshold)."""
    abstention = report.get("abstention") or {}
    return abstention.get("coverage_at_target")


def dataset_root(data: str) -> str:
    from recaptcha_tf.data.text.formats import text_data_path

    return text_data_path(data)


def plot(rows: list[dict], path: str, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for start in STARTS:
        points = sorted(
            (r["labels"], r["exact_match"]) for r in rows if r["start"] == start and r["exact_match"] is not None
        )
        if points:
            ax.plot([max(p[0], 1) for p in points], [p[1] for p in points], "o-", label=f"from {start}")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images (0 plotted at 1)")
    ax.set_ylabel("exact match on the test split")
    ax.set_ylim(0, 1)
    ax.set_title(f"label curve: {name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=100)
    os.replace(path + ".tmp.png", path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
