"""The documentation site builds with ``mkdocs build --strict`` (no warning at all), and its generated pages cover
what they are generated from: every command of the parser, every model of the registry, every machine of the
benchmark results."""

import glob
import html
import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built strictly into a temporary folder; ``{page path: its HTML}`` reader."""
    import importlib

    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):  # pinned: make installs them
        importlib.import_module(module)
    out = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", "mkdocs.yml", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=540,
    )
    log = [line for line in (result.stdout + result.stderr).splitlines() if re.match(r"(WARNING|ERROR)\s+-", line)]
    assert result.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(log or [result.stderr[-4000:]])
    assert not log, "\n".join(log)

    def page(path: str) -> str:
        with open(out / path / "index.html", encoding="utf-8") as f:
            return f.read()

    return page


def test_the_cli_page_lists_every_command_and_its_options(site):
    from recaptcha_tf.cli.main import build_parser

    page = site("reference/cli")
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert len(commands) >= 10
    for name, sub in commands.items():
        assert f'id="{name}"' in page, f"no section for `recaptcha-tf {name}`"
        for action in sub._actions:
            for option in action.option_strings:
                assert html.escape(option) in page, f"{name} {option} is missing"


def test_the_model_zoo_lists_every_registry_model(site):
    import recaptcha_tf.models  # noqa: F401  (registers the builders)
    from recaptcha_tf.models.registry import list_models

    page = site("reference/models")
    for name in list_models():
        assert f'id="{name}"' in page, f"model {name} has no section"
        assert f'href="#{name}"' in page, f"model {name} is not in the zoo table"
    try:
        from recaptcha_tf.models.shipped import shipped_models
    except ImportError:  # no shipped-model registry in this version
        return
    assert 'id="shipped-models"' in page
    for name in shipped_models():
        assert html.escape(name) in page.split('id="shipped-models"')[1], f"shipped model {name} is not listed"


def test_the_results_page_has_a_table_per_machine(site):
    page = site("results")
    cpus, unrecorded = set(), False
    for path in glob.glob(os.path.join(ROOT, "benchmarks", "results", "*.json")):
        with open(path) as f:
            text = f.read()
        recorded = set(re.findall(r'"cpu":\s*"([^"]*)"', text))
        cpus |= recorded
        if not recorded or len(recorded) < text.count('"machine"'):
            unrecorded = True  # a file, or some rows of one, that name no CPU
        json.loads(text)
    titles = [*sorted(cpus), *(["Machine not recorded"] if unrecorded else [])]
    assert titles
    sections = re.split(r"<h2\b", page)[1:]
    for title in titles:
        matching = [s for s in sections if html.escape(title) in s.split("</h2>")[0]]
        assert matching, f"no section for machine {title!r}"
        assert any("<table" in s for s in matching), f"the section of machine {title!r} has no table"


def test_the_shipped_models_page_shows_every_label_curve_from_its_json(site):
    page = site("shipped-models")
    assert "docs:label-curves" not in page  # the marker was filled
    for path in glob.glob(os.path.join(ROOT, "benchmarks", "results", "label_curve_*.json")):
        with open(path) as f:
            data = json.load(f)
        name = os.path.basename(path)[len("label_curve_") : -len(".json")]
        heading = rf"<h4[^>]*><code>{re.escape(html.escape(name))}</code>.*?</h4>"
        found = re.search(heading + r"(.*?)(?=<h[1-4]|$)", page, re.S)
        assert found and "<table" in found.group(1), f"no label-curve table for {name}"
        section = found.group(1)
        for row in data["rows"]:
            if row["exact_match"]:
                assert f"{row['exact_match']:.4g}" in section, f"{name}: {row} is not in the table"


def test_the_shipped_models_page_shows_every_plateau_lever_from_its_json(site):
    page = site("shipped-models")
    assert "docs:plateau-levers" not in page
    with open(os.path.join(ROOT, "benchmarks", "results", "plateau_levers.json")) as f:
        rows = json.load(f)["rows"]
    assert rows
    for row in rows:
        lever = re.escape(row["lever"])
        found = re.search(rf"<tr>\s*<td>{lever}( \(the code of commit.*?)?</td>(.*?)</tr>", page, re.S)
        assert found, f"no row for the {row['lever']} lever"
        assert f"{row['exact_match']:.4g}" in found.group(2) and f"{row['cer']:.4g}" in found.group(2)


def _assert_tile_rows(page: str, rows: list[dict], key: str) -> None:
    """Every row of a tile JSON has its table row (named by ``key``, plain or with flip TTA) and figures."""
    assert rows
    for row in rows:
        found = re.search(rf"<tr>\s*<td>{re.escape(html.escape(row[key]))}(, flip TTA)?</td>(.*?)</tr>", page, re.S)
        assert found, f"no row for {row[key]}"
        assert f"{row['top1']:.4g}" in page and f"{row['macro_f1']:.4g}" in page


def test_the_shipped_models_page_shows_the_tile_model_figures_from_their_json(site):
    page = site("shipped-models")
    assert "docs:shipped-tiles" not in page
    with open(os.path.join(ROOT, "benchmarks", "results", "shipped_tiles.json")) as f:
        _assert_tile_rows(page, json.load(f)["rows"], "model")


def test_the_shipped_models_page_shows_the_tile_levers_from_their_json(site):
    page = site("shipped-models")
    assert "docs:tile-levers" not in page
    path = os.path.join(ROOT, "benchmarks", "results", "tile_levers.json")
    if not os.path.isfile(path):  # the benchmark has not run: the page says so
        assert "No tile lever has been measured yet" in page
        return
    with open(path) as f:
        _assert_tile_rows(page, json.load(f)["rows"], "lever")


def test_the_tile_levers_table_lists_each_lever_with_its_options(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import docs_pages

    rows = [
        {"lever": "student (the shipped build's)", "tta": "none", "top1": 0.879, "macro_f1": 0.847, "other_f1": 0.699,
         "background_fpr": 0.186, "grid3x3_threshold": 0.67, "train_minutes": 28.9},
        {"lever": "other-weight-3", "tta": "flip", "top1": 0.8812, "macro_f1": 0.8501, "other_f1": 0.71,
         "background_fpr": 0.15, "grid3x3_threshold": None, "train_minutes": 30.1,
         "command": "recaptcha-tf train --task tiles --teacher a --time-budget 60 --class-weight other=3",
         "machine": {"cpu": "AMD EPYC", "cpus": 2, "gpus": 0, "date": "2026-12-08 10:00 UTC"}},
    ]  # fmt: skip
    path = tmp_path / "tile_levers.json"
    path.write_text(json.dumps({"test_tiles": 1410, "rows": rows}))
    table = docs_pages.tile_levers_table(str(path))
    lines = [line for line in table.splitlines() if line.startswith("| other-weight-3")]
    assert len(lines) == 1 and "`--class-weight other=3`" in lines[0] and "0.8812" in lines[0] and "n/a" in lines[0]
    assert "(the baseline)" in table and "1410" in table.replace(",", "") and "2026-12-08" in table
    assert "No tile lever" in docs_pages.tile_levers_table(str(tmp_path / "missing.json"))


def test_the_label_points_table_lists_each_trained_point_with_its_options_and_machine(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import docs_pages
    import docs_text_tables

    machine = {"cpu": "AMD EPYC", "cpu_features": ["avx2"], "cpus": 2, "gpus": 0, "date": "2026-12-07 21:00 UTC"}
    payload = {"data": "/x/captcha-v2", "universal_version": "2", "minutes_per_point": 5, "machine": machine,
               "command": "python benchmarks/label_curve.py --data x --seed 1", "train_arg": {"patience": 0},
               "rows": [{"labels": 0, "start": "universal", "exact_match": 0.41},
                        {"labels": 100, "start": "universal", "exact_match": 0.9641, "steps": 740}]}  # fmt: skip
    (tmp_path / "p0-s1.json").write_text(json.dumps(payload))
    table = docs_text_tables.label_points_table(str(tmp_path))
    rows = [line for line in table.splitlines() if line.startswith("| captcha-v2")]
    assert len(rows) == 1  # the zero-shot row is no trained point
    assert "universal (v2)" in rows[0] and "| 1 |" in rows[0] and "`patience=0`" in rows[0] and "0.9641" in rows[0]
    assert "AMD EPYC (avx2)" in rows[0]  # one model name, two speeds: the instructions tell them apart, per row
    assert docs_pages.machine_key({"cpu": "AMD EPYC", "cpus": 2})[0] == "AMD EPYC"  # older results as they were
    assert "No label-curve point" in docs_text_tables.label_points_table(str(tmp_path / "none"))


def test_generated_pages_are_not_committed():
    for path in ("docs/reference/cli.md", "docs/reference/models.md", "docs/results.md"):
        assert not os.path.exists(os.path.join(ROOT, path)), f"{path} is generated at build time (tools/docs_hooks.py)"


def test_the_shipped_models_page_shows_the_universal_zero_shot_rows_and_the_rows_by_start(site):
    page = site("shipped-models")
    assert "docs:universal-zero-shot" not in page and "docs:robustness-starts" not in page
    with open(os.path.join(ROOT, "benchmarks", "results", "universal.json")) as f:
        rows = json.load(f)["rows"]
    for row in rows:
        found = re.search(rf"<tr>\s*<td>{re.escape(row['set'])}</td>(.*?)</tr>", page, re.S)
        assert found and f"{row['exact_match']:.4g}" in found.group(1), f"no zero-shot row for {row['set']}"
    with open(os.path.join(ROOT, "benchmarks", "results", "text_robustness.json")) as f:
        wild = [r for r in json.load(f)["rows"] if r["set"] == "wild-8000" and not r.get("options")]
    assert {r.get("start") for r in wild} >= {"scratch", "universal"}
    for row in wild:
        assert re.search(
            rf"<td>wild-8000</td>\s*<td>[^<]*(<code>[^<]*</code>[^<]*)?</td>\s*<td>{row['exact_match']:.4g}</td>", page
        ), row
