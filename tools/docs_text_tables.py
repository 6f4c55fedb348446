"""Generated tables of the text pages: the universal reader's zero-shot figures and the robustness rows by start.

* :func:`universal_table`: ``benchmarks/results/universal.json`` (``<!-- docs:universal-zero-shot -->``);
* :func:`robustness_starts_table`: the rows of ``benchmarks/results/text_robustness.json`` for some sets, one per
  start (scratch or a shipped reader, with its version) (``<!-- docs:robustness-starts SET [SET ...] -->``);
* :func:`label_points_table`: single label-curve points run again (other seeds, budgets or ``--train-arg`` levers),
  ``benchmarks/results/label_curve_points/*.json``, each a ``benchmarks/label_curve.py`` output as written
  (``<!-- docs:label-curve-points -->``).
"""

from __future__ import annotations

import json
import os
import re

from docs_pages import RESULTS, cell, machine_key, machine_title, md_table

LABEL_POINTS = os.path.join(RESULTS, "label_curve_points")
ROBUSTNESS_STARTS = re.compile(r"<!-- docs:robustness-starts ([\w\- ]+?) -->")


def universal_table(path: str = os.path.join(RESULTS, "universal.json"), earlier: str | None = None) -> str:
    """Zero-shot exact match of the shipped universal reader on each text set's default test split, with an
    earlier version's exact match beside it (``earlier``: default the newest other ``universal_v*.json``)."""
    if not os.path.isfile(path):
        return "The universal reader has not been benchmarked yet (`python benchmarks/universal.py`).\n"
    with open(path) as f:
        data = json.load(f)
    before = _earlier_version(data, earlier)
    previous = {r["set"]: r.get("exact_match") for r in (before or {}).get("rows") or []}
    rows = [
        [
            cell(row["set"]),
            cell(row.get("origin")),
            cell(row.get("test_n")),
            cell(row.get("exact_match")),
            cell(row.get("cer")),
            cell(row.get("coverage_at_99")),
            *([cell(previous.get(row["set"]))] if before else []),
        ]
        for row in data.get("rows") or []
    ]
    header = ["set", "where the images come from", "test images", "exact match", "CER", "kept at 99% right"]
    header += [f"v{before['version']} exact match"] if before else []
    version = f" v{data['version']}" if data.get("version") else ""
    return "\n".join(
        [
            md_table(header, rows),
            "",
            f"Generated from `benchmarks/results/universal.json` (`{data.get('model', 'universal')}`{version}, "
            f"`{(data.get('command') or '').strip()}`); {machine_title(machine_key(data.get('machine')))}, "
            f"{data.get('date', '')}; case-insensitive. CPU latency {cell(data.get('cpu_ms_per_image'))} ms an "
            "image, one at a time.",
            "",
        ]
    )


def _earlier_version(data: dict, earlier: str | None) -> dict | None:
    """The results of the newest earlier version (``universal_v<N>.json`` beside ``universal.json``)."""
    import glob

    if earlier is None:
        paths = glob.glob(os.path.join(RESULTS, "universal_v*.json"))
        found = []
        for candidate in paths:
            with open(candidate) as f:
                found.append(json.load(f))
        found = [d for d in found if d.get("version") and d.get("version") != data.get("version")]
        return max(found, key=lambda d: [int(p) for p in str(d["version"]).split(".")], default=None)
    with open(earlier) as f:
        return json.load(f)


def robustness_starts_table(sets: list[str], path: str = os.path.join(RESULTS, "text_robustness.json")) -> str:
    """The robustness rows of ``sets`` (training seed 0, no added options), one per start."""
    if not os.path.isfile(path):
        return "No text robustness row has been measured yet (`python benchmarks/text_robustness.py`).\n"
    with open(path) as f:
        found = [r for r in json.load(f)["rows"] if r["set"] in sets and not r.get("seed") and not r.get("options")]
    if not found:
        return f"No row of {', '.join(sets)} has been measured yet.\n"
    rows, machines = [], set()
    for row in sorted(found, key=lambda r: (sets.index(r["set"]), r.get("start") != "scratch")):
        start = row.get("start", "scratch")
        if start == "scratch":
            start = "scratch (the defaults)"
        else:
            start = f"`--weights {start}`" + (f" (v{row['start_version']})" if row.get("start_version") else "")
        machines.add(machine_title(machine_key(row.get("machine"))))
        rows.append(
            [
                cell(row["set"]),
                start,
                cell(row.get("exact_match")),
                cell(row.get("cer")),
                cell(row.get("steps")),
                cell(row.get("train_minutes")),
                cell(row.get("input")),
                cell(row.get("plateau")),
                cell((row.get("machine") or {}).get("date", "")[:10]),
            ]
        )
    header = ["set", "start", "exact match", "CER", "steps", "training minutes", "input", "ended on the plateau",
              "date"]  # fmt: skip
    return "\n".join(
        [
            md_table(header, rows),
            "",
            f"Generated from `benchmarks/results/text_robustness.json`; {', '.join(sorted(machines))}, one training "
            "at a time.",
            "",
        ]
    )


def fill_robustness_starts(markdown: str) -> str:
    """Replace every ``<!-- docs:robustness-starts SET [SET ...] -->`` marker with its table."""
    return ROBUSTNESS_STARTS.sub(lambda m: robustness_starts_table(m.group(1).split()), markdown)


def _curve_seed(data: dict) -> int | str:
    """A label-curve output's seed: recorded as ``seed``, or read from its command (outputs before it was recorded;
    the script's default is 0)."""
    if "seed" in data:
        return data["seed"]
    command = data.get("command", "")
    return command.split("--seed ")[-1].split()[0] if "--seed " in command else 0


def label_points_table(folder: str = LABEL_POINTS) -> str:
    """Every trained point of the label-curve outputs in ``folder``, one row each, sorted by set, labels and seed."""
    import glob

    found = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        for row in data.get("rows") or []:
            if row.get("labels"):
                found.append((data, row, os.path.basename(path)))
    if not found:
        return "No label-curve point has been run again yet.\n"
    rows, machines = [], set()
    for data, row, name in sorted(found, key=lambda t: (t[1]["labels"], t[2])):
        options = data.get("train_arg") or {}
        machines.add(machine_title(machine_key(data.get("machine"))))
        rows.append(
            [
                cell(os.path.basename(data.get("data", ""))),
                cell(row["labels"]),
                cell(row["start"]) + (f" (v{data['universal_version']})" if row["start"] == "universal" else ""),
                cell(_curve_seed(data)),
                cell(data.get("minutes_per_point")),
                ", ".join(f"`{k}={v}`" for k, v in options.items()) or "(the defaults)",
                cell(row.get("exact_match")),
                cell(row.get("cer")),
                cell(row.get("steps")),
                cell(row.get("train_seconds")),
                cell(row.get("kept_at_99")),
                cell(machine_key(data.get("machine"))[0]),
                f"`{name}`",
            ]
        )  # fmt: skip
    header = ["set", "labels", "start", "seed", "budget (minutes)", "train options", "exact match", "CER", "steps",
              "training seconds", "kept at 99% right", "CPU", "file"]  # fmt: skip
    return "\n".join(
        [
            md_table(header, rows),
            "",
            "Generated from `benchmarks/results/label_curve_points/`; each file is one `benchmarks/label_curve.py` "
            f"call (its command inside); {', '.join(sorted(machines))}, one training at a time.",
            "",
        ]
    )
