"""The documentation site's generated pages, as Markdown, from the package and the benchmark results.

Each function returns a whole page (or a section) read from its one source of truth, so nothing here is typed by
hand and nothing generated is committed: :mod:`docs_hooks` (``hooks:`` in ``mkdocs.yml``) adds the pages to the
build.

* :func:`cli_page`: every command and option of the ``recaptcha-tf`` argparse parser, with its help and default;
* :func:`models_page`: the model registry (head kind, tasks, parameters, input size, recipe, pretrained weights),
  and the shipped models when ``recaptcha_tf.models.shipped`` exists;
* :func:`results_page`: ``benchmarks/results/*.json``, one section and table per machine;
* :func:`faults_section`: the kill-and-resume table of ``benchmarks/results/faults.json``;
* :func:`layers_table`: the package layers declared in ``pyproject.toml``.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
# Where the site publishes the files of benchmarks/results (JSON and figures), so pages can link them.
RESULT_FILES = "results/files"
NOT_RECORDED = "Machine not recorded"


# ----------------------------------------------------------------------------- Markdown helpers


def cell(value) -> str:
    """``value`` as the text of one Markdown table cell (pipes, HTML and line breaks made harmless)."""
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = ""
    else:
        text = str(value)
    text = " ".join(text.split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*")


def code(text) -> str:
    """``text`` as inline code inside a table cell."""
    text = str(text).replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; ``rows`` hold cell texts already (see :func:`cell`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI reference


def _invocation(action: argparse.Action) -> str:
    formatter = argparse.HelpFormatter("recaptcha-tf")
    return formatter._format_action_invocation(action)


def _help_text(action: argparse.Action, prog: str) -> str:
    """The option's help with ``%(default)s``-style fields filled in, without the formatter's added default."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return argparse.HelpFormatter(prog)._expand_help(action)


def _default(action: argparse.Action) -> str:
    if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return ""
    if action.default is None or action.default is False or action.default in (argparse.SUPPRESS, []):
        return ""
    return code(action.default)


def _options_tables(parser: argparse.ArgumentParser) -> list[str]:
    parts = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if not isinstance(a, argparse._SubParsersAction)]
        actions = [a for a in actions if a.help != argparse.SUPPRESS]
        if not actions:
            continue
        rows = []
        for action in actions:
            name = code(_invocation(action))
            if action.required and action.option_strings:
                name += " (required)"
            rows.append([name, _default(action), cell(_help_text(action, parser.prog))])
        title = group.title or "options"
        parts.append(f"**{title[0].upper()}{title[1:]}**\n\n" + md_table(["argument", "default", "help"], rows))
    return parts


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """``{command: (its parser, its one-line help)}`` in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (sub, helps.get(name, "")) for name, sub in action.choices.items()}
    return {}


def cli_page() -> str:
    """The command-line reference: generated from :func:`recaptcha_tf.cli.main.build_parser`."""
    from recaptcha_tf.cli.main import build_parser

    parser = build_parser()
    commands = subcommands(parser)
    lines = [
        "# Command line",
        "",
        "Generated from the `recaptcha-tf` argparse parser (`recaptcha_tf.cli.main.build_parser`) when the site is "
        "built: every command, and every option with its help and default. `recaptcha-tf COMMAND --help` prints the "
        "same. `python -m recaptcha_tf` is the same program.",
        "",
        "```text",
        parser.format_usage().strip(),
        "```",
        "",
        parser.description or "",
        "",
        *_options_tables(parser),
        "",
        "## Commands",
        "",
        md_table(["command", "what it does"], [[f"[`{n}`](#{n})", cell(h)] for n, (_, h) in commands.items()]),
    ]
    for name, (sub, help_line) in commands.items():
        sentence = cell(help_line).rstrip(".")
        lines += ["", f"## {name}", "", sentence[:1].upper() + sentence[1:] + ".", ""]
        if sub.description:
            lines += [sub.description.strip(), ""]
        usage = sub.format_usage().strip()
        lines += ["```text", usage, "```", ""]
        lines += ["\n\n".join(_options_tables(sub))]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- model zoo

# The class count each task's parameter figure is given for (the shared sets: 12 tile classes, 10 digits).
CLASSES_FOR_COUNT = {"tiles": 12, "chars": 10}


def _arg_doc(fn, name: str) -> str | None:
    """The text of argument ``name`` in ``fn``'s Keras-style ``Args:`` section, joined onto one line."""
    doc = inspect.getdoc(fn) or ""
    match = re.search(rf"^(\s*)(?:\w+, )*{re.escape(name)}(?:, \w+)*: (.*(?:\n\1\s+.*)*)", doc, re.M)
    return " ".join(match.group(2).split()) if match else None


def _module_weights_doc(module) -> str | None:
    """The part of a module's docstring on ``--weights``: from its first mention to the end of that paragraph
    (and of the bullet list that follows it)."""
    doc = inspect.getdoc(module) or ""
    start = doc.find("``--weights``")
    if start < 0:
        return None
    paragraph = re.split(r"\n\n(?!\* )", doc[start:])[0]
    return " ".join(paragraph.split())


def _weights_doc(name: str, builder) -> str:
    """What ``--weights`` takes for a model: its builder's ``weights`` argument, else (or where that points to its
    module's docstring) the module's own text on ``--weights``, else the first function of the module that
    documents a ``weights`` argument."""
    if "weights" not in inspect.signature(builder).parameters:
        return ""
    text = _arg_doc(builder, "weights")
    module = sys.modules.get(builder.__module__)
    if module is not None and (text is None or "module docstring" in text):
        text = _module_weights_doc(module) or text
    if text is None and module is not None:
        for _, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and "weights" in inspect.signature(fn).parameters:
                text = _arg_doc(fn, "weights")
                if text:
                    break
    return text or "a `.weights.h5` file saved from the same backbone"


def _weights_kinds(name: str, doc: str, models: list[str]) -> str:
    """The kinds of pretrained weights ``doc`` (:func:`_weights_doc`) says model ``name`` takes, in a few words."""
    if not doc:
        return "none (random initialisation)"
    lowered = doc.lower()
    only = re.search(r"imagenet\W*\(([^)]*)\)", lowered)  # "imagenet" (vit-b16 at 224x224 ...): another model's
    if only and any(m in only.group(1) and m != name for m in models) and name not in only.group(1):
        lowered = lowered.replace("imagenet", "")
    kinds = [
        label
        for key, label in (("imagenet", "ImageNet"), ("preset", "keras-hub preset"), ("file", "weights file"))
        if key in lowered
    ]
    return ", ".join(kinds) or "weights file"


def _rst_to_md(text: str) -> str:
    """Sphinx roles and double backticks of the package's docstrings as plain Markdown code."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _count_input(name: str, head: str, tasks: list, recipe: dict) -> tuple[tuple[int, int, int], int, str]:
    """``(input shape, classes, task)`` the zoo's parameter count is given for."""
    from recaptcha_tf.models import build_text_model
    from recaptcha_tf.tasks import get_task

    specs = [get_task(t) for t in tasks]
    own = [s for s in specs if s.defaults.get("model") == name]

    def area(spec):
        size = spec.defaults.get("image_size")
        return size[0] * size[1] if size else 0

    spec = (own or sorted(specs, key=area, reverse=True))[0]
    defaults = spec.defaults
    size = recipe.get("image_size") or defaults.get("image_size")
    channels = defaults.get("channels", 3)
    if spec.sequence:
        from recaptcha_tf.data.text import DEFAULT_CHARSET, expand_charset

        size = size or inspect.signature(build_text_model).parameters["image_size"].default
        channels = 1 if defaults.get("colour") == "ink" else channels
        classes = len(expand_charset(DEFAULT_CHARSET)) + 1
    else:
        classes = CLASSES_FOR_COUNT.get(spec.name, 10)
    if recipe.get("image_size"):
        channels = 3
    return (int(size[0]), int(size[1]), int(channels)), classes, spec.name


def _parameter_count(name: str, shape, classes: int) -> int | None:
    import keras

    from recaptcha_tf.models.registry import build_model

    try:
        model = build_model(name, shape, classes)
    except Exception:  # noqa: BLE001  a builder that needs downloads or arguments: no figure, not a failed build
        return None
    count = model.count_params()
    del model
    keras.backend.clear_session()
    return count


def _millions(count: int | None) -> str:
    return "?" if count is None else f"{count / 1e6:.2f} M"


def _recipe_text(recipe: dict) -> str:
    if not recipe:
        return "task defaults"
    return ", ".join(f"{k}={'x'.join(map(str, v)) if isinstance(v, (tuple, list)) else v}" for k, v in recipe.items())


def _arguments_table(builder) -> str:
    rows = []
    for param in list(inspect.signature(builder).parameters.values())[2:]:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            rows.append([code(f"**{param.name}"), "", "passed on to the shared builder"])
            continue
        default = "" if param.default is inspect.Parameter.empty else code(repr(param.default))
        doc = _arg_doc(builder, param.name) or ""
        rows.append([code(param.name), default, cell(_rst_to_md(doc))])
    return md_table(["argument", "default", "meaning"], rows) if rows else "No arguments beyond the input shape."


def shipped_section() -> str:
    """The shipped models of ``recaptcha_tf.models.shipped.shipped_models()``, when that module exists."""
    if importlib.util.find_spec("recaptcha_tf.models.shipped") is None:
        return ""
    module = importlib.import_module("recaptcha_tf.models.shipped")
    if not hasattr(module, "shipped_models"):
        return ""
    entries = module.shipped_models()
    items = list(entries.items()) if isinstance(entries, dict) else [(None, e) for e in entries]
    rows = []
    for key, entry in items:
        if dataclasses.is_dataclass(entry):
            entry = dataclasses.asdict(entry)
        elif not isinstance(entry, dict):
            entry = dict(vars(entry)) if hasattr(entry, "__dict__") else {"model": entry}
        # absolute paths (where the package is installed) say nothing about the model
        entry = {k: v for k, v in entry.items() if not isinstance(v, os.PathLike)}
        rows.append({"name": key, **entry} if key is not None and "name" not in entry else entry)
    intro = (
        "## Shipped models\n\nTrained models that come inside the package (`recaptcha_tf.models.shipped`): "
        "`--model NAME` of `evaluate`, `predict`, `export` and `serve`, and `recaptcha_tf.load(NAME)`, take their "
        "names.\n\n"
    )
    if not rows:
        return intro + "None is shipped in this version.\n"
    columns = list(dict.fromkeys(k for r in rows for k in r))

    def flat(column, value):
        if isinstance(value, dict):
            return ", ".join(f"{k}: {cell(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return ", ".join(cell(v) for v in value)
        if column == "sha256" and isinstance(value, str):
            return code(value[:12])
        return cell(value)

    return intro + md_table(columns, [[flat(c, r.get(c)) for c in columns] for r in rows]) + "\n"


def models_page() -> str:
    """The model zoo: generated from :mod:`recaptcha_tf.models.registry` and the task registry."""
    import recaptcha_tf.models  # noqa: F401  (registers the built-in builders)
    from recaptcha_tf.models.registry import head_kinds, list_models, model_builder, model_head, pretrained_recipe
    from recaptcha_tf.tasks import get_task, task_names

    tasks_by_head = {kind: [t for t in task_names() if kind in get_task(t).heads] for kind in head_kinds()}
    lines = [
        "# Model zoo",
        "",
        "Generated from the model registry (`recaptcha_tf.models.registry`) and the task registry "
        "(`recaptcha_tf.tasks`) when the site is built; `recaptcha-tf models` lists the same. A model declares its "
        "head kind, and each task takes the models of the head kinds it lists.",
        "",
        "## Tasks and head kinds",
        "",
        md_table(
            ["task", "what it is", "head kinds", "default model", "default input"],
            [
                [
                    code(t),
                    cell(get_task(t).description),
                    ", ".join(code(h) for h in get_task(t).heads),
                    f"[`{get_task(t).defaults.get('model')}`](#{get_task(t).defaults.get('model')})",
                    cell(_size(get_task(t).defaults)),
                ]
                for t in task_names()
            ],
        ),
        "",
        md_table(
            ["head kind", "tasks that take it"],
            [[code(k), ", ".join(code(t) for t in ts) or "none yet"] for k, ts in tasks_by_head.items()],
        ),
        "",
        "## Models",
        "",
        "*Parameters* are counted on the network built at the *input size* shown (height x width x channels): the "
        "model's transfer recipe's size, else the defaults of its task, with 12 classes for tiles, 10 for chars and "
        "the default `a-z0-9` vocabulary for text. The *recipe* holds the training defaults a model uses when it "
        "starts from pretrained weights (`--weights`); options given on the command line win over it.",
        "",
    ]
    rows, sections = [], []
    for name in list_models():
        builder, head, recipe = model_builder(name), model_head(name), pretrained_recipe(name)
        tasks = tasks_by_head.get(head, [])
        shape, classes, task = _count_input(name, head, tasks, recipe) if tasks else ((0, 0, 0), 0, "")
        count = _parameter_count(name, shape, classes) if tasks else None
        weights = _weights_doc(name, builder)
        rows.append(
            [
                f"[`{name}`](#{name})",
                code(head),
                ", ".join(code(t) for t in tasks),
                _millions(count),
                "x".join(map(str, shape)),
                cell(_recipe_text(recipe)),
                cell(_weights_kinds(name, weights, list_models())),
            ]
        )
        summary = _rst_to_md((inspect.getdoc(builder) or "").split("\n\n")[0])
        sections += [
            f"### {name}",
            "",
            " ".join(summary.split()),
            "",
            f"Head `{head}`, for {', '.join(f'`{t}`' for t in tasks) or 'no task yet'}; "
            f"{_millions(count)} parameters at {'x'.join(map(str, shape))} ({task} defaults, {classes} outputs).",
            "",
            "**Pretrained weights** (`--weights`): "
            + (cell(_rst_to_md(weights)) if weights else "none; it trains from a random initialisation")
            + ".",
            "",
            f"**Recipe**: {cell(_recipe_text(recipe))}.",
            "",
            f"**Builder arguments** (`--model-arg KEY=VALUE`), of `{builder.__module__}.{builder.__name__}`:",
            "",
            _arguments_table(builder),
            "",
        ]
    lines += [
        md_table(["model", "head", "tasks", "parameters", "input size", "recipe", "pretrained weights"], rows),
        "",
    ]
    shipped = shipped_section()
    if shipped:
        lines += [shipped, ""]
    lines += ["## Each model", "", *sections]
    return "\n".join(lines) + "\n"


def _size(defaults) -> str:
    size = defaults.get("image_size")
    if not size:
        return "fitted to the training images"
    return f"{size[0]}x{size[1]}x{defaults.get('channels', 3)}"


# ----------------------------------------------------------------------------- benchmark results

# Keys that are not a figure: commands, paths and nested detail, shown elsewhere or not at all.
_NOT_A_COLUMN = {"command", "commands", "out", "evaluate", "machine", "note", "per_class", "per_class_f1", "model_info"}
_LIST_KEYS = ("rows", "grids", "runs")


def _glance():
    spec = importlib.util.spec_from_file_location("benchmarks_glance", os.path.join(ROOT, "benchmarks", "glance.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script_doc(stem: str) -> tuple[str, str]:
    """``(script file, its docstring's first line)`` of the benchmark that wrote results ``stem``."""
    scripts = sorted(
        (os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "benchmarks", "*.py"))),
        key=len,
        reverse=True,
    )
    for script in scripts:
        if stem == script or stem.startswith(script + "_"):
            path = os.path.join(ROOT, "benchmarks", script + ".py")
            with open(path) as f:
                match = re.search(r'"""(.*?)(?:\n|""")', f.read(), re.S)
            return f"benchmarks/{script}.py", (match.group(1).strip() if match else "")
    return "", ""


def _speed_order() -> tuple[str, ...]:
    """``benchmarks/_common.py``'s ``SPEED_FLAGS`` (slowest first), the list the benchmarks record from."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from _common import SPEED_FLAGS

    return SPEED_FLAGS


SPEED_ORDER = _speed_order()


def machine_key(machine: dict | None) -> tuple[str, int | None, int]:
    """``(CPU or NOT_RECORDED, cores, GPUs)``: which machine a result ran on."""
    machine = machine or {}
    cpu = machine.get("cpu") or NOT_RECORDED
    if machine.get("cpu_features") and cpu != NOT_RECORDED:  # recorded since 2026-12-07: one model name, two speeds
        cpu = f"{cpu} ({max(machine['cpu_features'], key=SPEED_ORDER.index)})"
    return (cpu, machine.get("cpus"), int(machine.get("gpus") or 0))


def machine_title(key: tuple[str, int | None, int]) -> str:
    cpu, cores, gpus = key
    parts = [f"{cores} CPU cores" if cores else "cores not recorded", f"{gpus} GPU" if gpus else "no GPU"]
    return f"{cpu}: {', '.join(parts)}" if cpu != NOT_RECORDED else f"{NOT_RECORDED} ({', '.join(parts)})"


def result_rows(data: dict) -> list[dict]:
    """The headline rows of one results file, each with its ``machine`` (its own, else the file's)."""
    file_machine = data.get("machine") or ({"cpus": data["cpus"]} if "cpus" in data else {})
    rows = []
    for key in _LIST_KEYS:
        for row in data.get(key) or []:
            if not isinstance(row, dict):
                continue
            if isinstance(row.get("result"), dict):  # a list of whole runs: {command, machine, result, per_class}
                row = {**row["result"], "command": row.get("command"), "machine": row.get("machine")}
            rows.append({**row, "machine": row.get("machine") or file_machine})
    if not rows and isinstance(data.get("result"), dict):
        rows.append({**data["result"], "command": data.get("command"), "machine": file_machine})
    if isinstance(data.get("baseline"), dict):
        rows.append({**data["baseline"], "machine": file_machine})
    return rows


def load_results(folder: str = RESULTS) -> dict[str, dict]:
    """``{file stem: its JSON}`` for every ``*.json`` in ``folder``."""
    results = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            results[os.path.basename(path)[:-5]] = json.load(f)
    return results


def machines(results: dict[str, dict]) -> list[tuple[str, int | None, int]]:
    """Every machine the results ran on, recorded CPUs first, then the results without one."""
    keys = {machine_key(r["machine"]) for data in results.values() for r in result_rows(data)}
    return sorted(keys, key=lambda k: (k[0] == NOT_RECORDED, k[0], k[1] or 0, k[2]))


def _columns(rows: list[dict]) -> list[str]:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return [
        c
        for c in columns
        if c not in _NOT_A_COLUMN
        and all(not isinstance(r.get(c), (dict, list)) for r in rows)
        # long strings (paths, notes) make tables unreadable; they stay in the JSON
        and all(not isinstance(r.get(c), str) or len(r[c]) <= 60 for r in rows)
    ]


def _date(data: dict, rows: list[dict]) -> str:
    dates = sorted({(r.get("machine") or {}).get("date", "")[:10] for r in rows} - {""})
    if not dates and data.get("date"):
        dates = [str(data["date"])[:10]]
    return dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}" if dates else ""


def _figures(data, stem: str, pngs: set[str]) -> list[str]:
    """PNG names a results file refers to (``"plot": "results/x.png"``) that exist beside it."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value.endswith(".png") and os.path.basename(value) in pngs:
            found.add(os.path.basename(value))

    walk(data)
    found |= {p for p in pngs if p.startswith(stem + "_") or p == stem + ".png"}
    return sorted(found)


def _benchmark_section(
    stem: str, data: dict, rows: list[dict], pngs: set[str], page_dir: str, anchor: str
) -> list[str]:
    script, doc = _script_doc(stem)
    link = f"{page_dir}{RESULT_FILES}/{stem}.json"
    lines = [f"### {stem} {{#{anchor}}}", "", f"{cell(doc)}" if doc else "", ""]
    source = f"Written by `{script}`; " if script else ""
    lines += [f"{source}the whole record: [`benchmarks/results/{stem}.json`]({link}).", ""]
    scalars = {
        k: v
        for k, v in data.items()
        if k not in _NOT_A_COLUMN
        and k not in _LIST_KEYS
        and k not in ("result", "baseline", "date", "cpus")
        and isinstance(v, (int, float, str, bool))
        and not (isinstance(v, str) and len(v) > 60)
    }
    if scalars:
        lines += ["; ".join(f"{k}: {cell(v)}" for k, v in scalars.items()), ""]
    columns = _columns(rows)
    lines += [md_table([cell(c) for c in columns], [[cell(r.get(c)) for c in columns] for r in rows]), ""]
    for key, value in data.items():  # a dict of dicts (per-format parity, per-class figures): its own table
        if key in _NOT_A_COLUMN - {"per_class"} or not isinstance(value, dict) or not value:
            continue
        if all(isinstance(v, dict) for v in value.values()):
            inner = _columns(list(value.values()))
            body = [[code(k), *(cell(v.get(c)) for c in inner)] for k, v in value.items()]
            lines += [f"**{key}**", "", md_table([key, *map(cell, inner)], body), ""]
    commands = list(dict.fromkeys(r.get("command") for r in rows if r.get("command")))
    if not commands and isinstance(data.get("command"), str):
        commands = [data["command"]]
    if commands:
        shown = commands[:6]
        more = f" (and {len(commands) - 6} more in the JSON)" if len(commands) > 6 else ""
        lines += [f"Commands{more}:", "", "```bash", *shown, "```", ""]
    for png in _figures(data, stem, pngs):
        lines += [f"![{png}]({page_dir}{RESULT_FILES}/{png})", ""]
    return lines


def _headline(data: dict, rows: list[dict]) -> str:
    for key in ("exact_match", "top1", "macro_f1", "requests_per_s", "images_per_s", "passed"):
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values:
            best = max(values)
            return f"best {key} {cell(float(best) if not isinstance(best, bool) else best)}"
    if "passed" in data:
        return f"passed: {cell(data['passed'])}"
    return ""


def results_page(folder: str = RESULTS, page_dir: str = "") -> str:
    """Every benchmark result, one section per machine, each with a table of what ran on it.

    ``page_dir`` is the relative path from the page to the site root (``""`` for a page at the root).
    """
    results = load_results(folder)
    pngs = {os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.png"))}
    keys = machines(results)
    glance = _glance()
    lines = [
        "# Benchmark results",
        "",
        "Generated from `benchmarks/results/*.json` when the site is built; each file records the commands that "
        "produced it. Results are grouped by the machine they ran on: newer files record its CPU model "
        "(`benchmarks/_common.py`'s `machine()`), older ones only its core and GPU counts, and are listed under "
        f"*{NOT_RECORDED}*. The how and why of each figure is in the [research log](research/lab-notebook.md).",
        "",
        "## At a glance",
        "",
        "The table of the README (`python benchmarks/glance.py`): defaults unless the model says otherwise, on the "
        "test split of each set.",
        "",
        glance.glance_table(),
        "",
        "Machines: " + ", ".join(f"[{machine_title(k)}](#machine-{n})" for n, k in enumerate(keys, start=1)) + ".",
        "",
    ]
    for number, key in enumerate(keys, start=1):
        title = machine_title(key)
        on_it = {}
        for stem, data in results.items():
            rows = [r for r in result_rows(data) if machine_key(r["machine"]) == key]
            if rows:
                on_it[stem] = (data, rows)
        summary = [
            [
                f"[{stem}](#machine-{number}-{stem})",
                cell(_script_doc(stem)[1]),
                str(len(rows)),
                _date(data, rows),
                cell(_headline(data, rows)),
            ]
            for stem, (data, rows) in on_it.items()
        ]
        lines += [
            f"## {title} {{#machine-{number}}}",
            "",
            md_table(["benchmark", "what it measures", "rows", "date", "headline"], summary),
            "",
        ]
        for stem, (data, rows) in on_it.items():
            lines += _benchmark_section(stem, data, rows, pngs, page_dir, f"machine-{number}-{stem}")
    return "\n".join(lines) + "\n"


def faults_section(path: str = os.path.join(RESULTS, "faults.json"), page_dir: str = "") -> str:
    """The kill-and-resume table of ``benchmarks/faults.py`` (``benchmarks/results/faults.json``)."""
    if not os.path.isfile(path):
        return ""
    with open(path) as f:
        data = json.load(f)
    rows = data.get("rows") or []
    columns = _columns(rows)
    final = data.get("final") or {}
    mid = data.get("mid_write") or {}
    return "\n".join(
        [
            "## Kill-and-resume results",
            "",
            f"Generated from [`benchmarks/results/faults.json`]({page_dir}{RESULT_FILES}/faults.json) "
            f"(`python benchmarks/faults.py --kills {data.get('kills', 20)}`, {data.get('date', 'date not recorded')}, "
            f"{data.get('cpus', '?')} CPU cores): {data.get('kills')} SIGKILLs of a {data.get('epochs')}-epoch run "
            f"at random instants, each followed by the same command. Passed: **{cell(data.get('passed'))}**.",
            "",
            md_table([cell(c) for c in columns], [[cell(r.get(c)) for c in columns] for r in rows]),
            "",
            "After the last kill: " + "; ".join(f"{k}: {cell(v)}" for k, v in final.items()) + ".",
            "",
            "A kill while `latest.weights.h5` is written (simulated by truncating it): "
            + "; ".join(f"{k}: {cell(v)}" for k, v in mid.items())
            + ".",
            "",
        ]
    )


# ----------------------------------------------------------------------------- label curves


def _minutes(seconds) -> str:
    return f"{seconds / 60:.1f}" if isinstance(seconds, (int, float)) and seconds else ""


def label_curve_section(path: str, page_dir: str = "") -> str:
    """One set's label curve (``benchmarks/label_curve.py`` -> ``label_curve_<set>.json``): exact match against the
    number of labelled images, from scratch and from ``universal``, with the share kept at 99% precision."""
    with open(path) as f:
        data = json.load(f)
    name = os.path.basename(path)[len("label_curve_") : -len(".json")]
    by_count: dict[int, dict[str, dict]] = {}
    for row in data.get("rows") or []:
        by_count.setdefault(row["labels"], {})[row["start"]] = row
    rows = []
    for count in sorted(by_count):
        scratch, universal = by_count[count].get("scratch", {}), by_count[count].get("universal", {})
        rows.append(
            [
                cell(count),
                cell(scratch.get("exact_match")),
                cell(_minutes(scratch.get("train_seconds"))),
                cell(universal.get("exact_match")),
                cell(_minutes(universal.get("train_seconds"))),
                cell(universal.get("kept_at_99")),
            ]
        )
    version = data.get("universal_version") or "1"  # curves made before versions were recorded started from v1
    header = ["labelled images", "from scratch", "training minutes", f"from `universal` v{version}",
              "training minutes", "kept at 99% (universal)"]  # fmt: skip
    machine = machine_title(machine_key(data.get("machine")))
    budget = data.get("minutes_per_point")
    return "\n".join(
        [
            f"#### `{name}`",
            "",
            f"`{data.get('command', '')}`: a fixed test split of {data.get('test_images')} images, a pool of "
            f"{data.get('pool_images')}, scored with `--case {data.get('case', 'keep')}`"
            + (f", each point held to {budget:g} minutes of training" if budget else "")
            + f"; {machine}, {data.get('date', 'date not recorded')}. Minutes are each run's own training time.",
            "",
            md_table(header, rows),
            "",
            f"![label curve: {name}]({page_dir}{RESULT_FILES}/label_curve_{name}.png)"
            if os.path.isfile(path[: -len(".json")] + ".png")
            else "",
            "",
        ]
    )


def label_curves(folder: str = RESULTS, page_dir: str = "") -> str:
    """Every set's label curve, captcha-v2 (the real set) first: the ``<!-- docs:label-curves -->`` marker."""
    paths = sorted(glob.glob(os.path.join(folder, "label_curve_*.json")), key=lambda p: ("captcha-v2" not in p, p))
    return "\n".join(label_curve_section(p, page_dir) for p in paths) or "No label curve has been run yet.\n"


# ----------------------------------------------------------------------------- the blank plateau's levers


def plateau_levers_table(path: str = os.path.join(RESULTS, "plateau_levers.json")) -> str:
    """``benchmarks/plateau_levers.py``'s rows (one training lever each on ``wild-8000``, from scratch) as a table:
    the ``<!-- docs:plateau-levers -->`` marker."""
    if not os.path.isfile(path):
        return "No plateau lever has been measured yet.\n"
    with open(path) as f:
        data = json.load(f)
    rows, machines_seen = [], set()
    for row in data.get("rows") or []:
        options = row["command"].split(" --logdir ", 1)[-1].split(" && ")[0].strip()
        options = options[2:].strip() if options.startswith("''") else options  # the empty --logdir
        machines_seen.add(machine_title(machine_key(row.get("machine"))))
        rows.append(
            [
                cell(row["lever"]) + (f" (the code of commit `{row['code']}`)" if row.get("code") else ""),
                code(options) if options else "(none)",
                cell(row.get("exact_match")),
                cell(row.get("cer")),
                cell(row.get("left_plateau_step")) if row.get("left_plateau_step") != "" else "never",
                cell(row.get("steps")),
                cell(row.get("train_minutes")),
                cell(row.get("input")),
            ]
        )
    header = ["lever", "options added", "exact match", "CER", "steps when it left the plateau", "steps",
              "training minutes", "input"]  # fmt: skip
    dates = sorted((r.get("machine") or {}).get("date", "")[:10] for r in data.get("rows") or [])
    when = f"{dates[0]} to {dates[-1]}" if dates and dates[0] != dates[-1] else (dates[0] if dates else "")
    return "\n".join(
        [
            md_table(header, rows),
            "",
            f"Generated from `benchmarks/results/plateau_levers.json`; {', '.join(sorted(machines_seen))}, {when}, "
            "one training at a time.",
            "",
        ]
    )


def shipped_tiles_table(path: str = os.path.join(RESULTS, "shipped_tiles.json")) -> str:
    """``benchmarks/shipped_tiles.py``'s rows (the shipped tile model beside its teachers, on the build's test split)
    as a table: the ``<!-- docs:shipped-tiles -->`` marker."""
    if not os.path.isfile(path):
        return "The shipped tile model has not been benchmarked yet.\n"
    with open(path) as f:
        data = json.load(f)

    def grid(row, key):
        return cell(row.get(key)) if row.get(key) is not None else "n/a"

    rows = [
        [
            cell(row["model"]) + (", flip TTA" if row.get("tta") not in (None, "none") else ""),
            cell(row["data"]),
            cell(row.get("top1")),
            cell(row.get("macro_f1")),
            cell(row.get("other_f1")),
            grid(row, "grid3x3_solved"),
            grid(row, "grid3x3_abstaining"),
            grid(row, "grid3x3_threshold"),
            cell(row.get("background_fpr")) + f" ({cell(row.get('background_fpr_uncalibrated'))})",
        ]
        for row in data.get("rows") or []
    ]
    header = ["model", "tiles", "top-1", "macro-F1", "`other` F1", "3x3 solved (arg-max)",
              "3x3 abstaining below `--min-confidence`", "3x3 at the challenge threshold",
              "background FPR (uncalibrated)"]  # fmt: skip
    when = machine_title(machine_key(data.get("machine")))
    return "\n".join(
        [
            md_table(header, rows),
            "",
            f"Generated from `benchmarks/results/shipped_tiles.json` (`{data.get('command', '').strip()}`); {when}, "
            f"{(data.get('machine') or {}).get('date', '')[:10]}. CPU latency {cell(data.get('cpu_ms_per_tile'))} ms a "
            f"tile, one at a time; {cell(data.get('test_tiles'))} test tiles.",
            "",
        ]
    )


def tile_levers_table(path: str = os.path.join(RESULTS, "tile_levers.json")) -> str:
    """``benchmarks/tile_levers.py``'s rows (the shipped build's student trained again with one change each, scored
    on the build's test split beside the student itself) as a table: the ``<!-- docs:tile-levers -->`` marker."""
    if not os.path.isfile(path):
        return "No tile lever has been measured yet (`python benchmarks/tile_levers.py`).\n"
    with open(path) as f:
        data = json.load(f)
    rows, dates, machines_seen = [], set(), set()
    for row in data.get("rows") or []:
        command = row.get("command", "")
        added = command.split(" --time-budget 60", 1)[-1].strip() if "--time-budget 60" in command else ""
        if "teacher-mnv2-s1" in command:
            added = (added + " --teacher teacher-mnv2-s1").strip()
        if row.get("machine"):
            machines_seen.add(machine_title(machine_key(row["machine"])))
            dates.add(row["machine"].get("date", "")[:10])
        rows.append(
            [
                cell(row["lever"]) + (", flip TTA" if row.get("tta") not in (None, "none") else ""),
                code(added) if added else "(the baseline)",
                cell(row.get("top1")),
                cell(row.get("macro_f1")),
                cell(row.get("other_f1")),
                cell(row.get("background_fpr")),
                cell(row.get("grid3x3_threshold")) if row.get("grid3x3_threshold") is not None else "n/a",
                cell(row.get("train_minutes")),
            ]
        )
    header = ["lever", "options added to the student's command", "top-1", "macro-F1", "`other` F1",
              "background FPR", "3x3 at the challenge threshold", "training minutes"]  # fmt: skip
    when = ", ".join(sorted(machines_seen)) + (f", {min(dates)} to {max(dates)}" if dates else "")
    return "\n".join(
        [
            md_table(header, rows),
            "",
            f"Generated from `benchmarks/results/tile_levers.json`; {when}; {cell(data.get('test_tiles'))} test "
            "tiles, one training at a time.",
            "",
        ]
    )


# ----------------------------------------------------------------------------- architecture


def layers_table(pyproject: str = os.path.join(ROOT, "pyproject.toml")) -> str:
    """The package's layers, lowest first, as ``[tool.recaptcha_tf.architecture]`` declares them (with their
    comments)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    with open(pyproject, "rb") as f:
        config = tomllib.load(f)["tool"]["recaptcha_tf"]["architecture"]
    with open(pyproject) as f:
        text = f.read()
    comments = dict(re.findall(r'^\s*"([\w.]+)",\s*#\s*(.*)$', text, re.M))
    rows = [[str(i), code(layer), cell(comments.get(layer, ""))] for i, layer in enumerate(config["layers"], start=1)]
    top = ", ".join(code(m) for m in config.get("top", []))
    return (
        md_table(["order", "layer", "what it holds"], rows)
        + f"\n\nAbove every layer: {top}. Deprecated re-export modules kept for one release: "
        + ", ".join(code(m) for m in config.get("legacy", []))
        + " (and the one-line aliases).\n"
    )


if __name__ == "__main__":  # preview one page: python tools/docs_pages.py cli|models|results|faults|layers|label-curves
    pages = {
        "cli": cli_page,
        "models": models_page,
        "results": results_page,
        "faults": faults_section,
        "layers": layers_table,
        "label-curves": label_curves,
    }
    print(pages[sys.argv[1]]() if len(sys.argv) > 1 else textwrap.dedent(__doc__))
