"""MkDocs hooks (``hooks:`` in ``mkdocs.yml``): the generated pages of the documentation site.

Nothing generated is committed. At build time this adds

* ``reference/cli.md``: the command-line reference, from the argparse parser;
* ``reference/models.md``: the model zoo, from the model and task registries;
* ``results.md``: every benchmark result, one table per machine, from ``benchmarks/results/*.json``;
* ``results/files/*``: those JSON files and figures themselves, so pages can link them;

and fills hand-written pages: the layers table of ``architecture.md`` (its ``<!-- docs:layers -->`` marker), the
label curves of ``shipped-models.md`` (``<!-- docs:label-curves -->``, from ``benchmarks/results/label_curve_*.json``),
its table of the blank plateau's levers (``<!-- docs:plateau-levers -->``, from ``plateau_levers.json``), the
shipped tile model's figures (``<!-- docs:shipped-tiles -->``, from ``shipped_tiles.json``), the levers on its
student (``<!-- docs:tile-levers -->``, from ``tile_levers.json``), the universal reader's zero-shot figures
(``<!-- docs:universal-zero-shot -->``, from ``universal.json``), robustness rows by start
(``<!-- docs:robustness-starts SET ... -->``, from ``text_robustness.json``) and the
kill-and-resume table at the end of ``reliability.md``. Links from the hand-written pages to
``benchmarks/results/...`` in the repository (right on GitHub) are pointed at the published copies.
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
import sys

from mkdocs.structure.files import File

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the model zoo builds each model once, quietly

import docs_pages  # noqa: E402  (found through HERE)
import docs_text_tables  # noqa: E402

CLI_PAGE = "reference/cli.md"
MODELS_PAGE = "reference/models.md"
RESULTS_PAGE = "results.md"
LAYERS_MARKER = "<!-- docs:layers -->"
LABEL_CURVES_MARKER = "<!-- docs:label-curves -->"
PLATEAU_LEVERS_MARKER = "<!-- docs:plateau-levers -->"
SHIPPED_TILES_MARKER = "<!-- docs:shipped-tiles -->"
TILE_LEVERS_MARKER = "<!-- docs:tile-levers -->"
UNIVERSAL_MARKER = "<!-- docs:universal-zero-shot -->"
LABEL_POINTS_MARKER = "<!-- docs:label-curve-points -->"
_REPO_RESULTS_LINK = re.compile(r"\]\(((?:\.\./)+benchmarks/results/[^)#\s]+)((?:#[^)\s]*)?)\)")

_cache: dict[str, str] = {}  # `mkdocs serve` rebuilds often: build the models only once


def on_files(files, config):
    """Add the generated pages and the published result files to the build."""
    if MODELS_PAGE not in _cache:
        _cache[MODELS_PAGE] = docs_pages.models_page()
    pages = {
        CLI_PAGE: docs_pages.cli_page(),
        MODELS_PAGE: _cache[MODELS_PAGE],
        RESULTS_PAGE: docs_pages.results_page(page_dir=""),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    for path in sorted(glob.glob(os.path.join(docs_pages.RESULTS, "*.json"))) + sorted(
        glob.glob(os.path.join(docs_pages.RESULTS, "*.png"))
    ):
        uri = f"{docs_pages.RESULT_FILES}/{os.path.basename(path)}"
        files.append(File.generated(config, uri, abs_src_path=path))
    return files


def _published(match: re.Match, page_uri: str) -> str:
    """A link into the repository's ``benchmarks/results/`` as the link to its copy in the site."""
    page_dir = posixpath.dirname(page_uri)
    target = posixpath.normpath(posixpath.join("docs", page_dir, match.group(1)))  # a path from the repository
    if not target.startswith("benchmarks/results/"):
        return match.group(0)
    copy = f"{docs_pages.RESULT_FILES}/{target[len('benchmarks/results/') :]}"
    return f"]({posixpath.relpath(copy, page_dir or '.')}{match.group(2)})"


def on_page_markdown(markdown, page, config, files):
    """Fill the generated parts of hand-written pages; point repository result links at the site's copies."""
    uri = page.file.src_uri
    depth = "../" * uri.count("/")
    if LAYERS_MARKER in markdown:
        markdown = markdown.replace(LAYERS_MARKER, docs_pages.layers_table())
    if LABEL_CURVES_MARKER in markdown:
        markdown = markdown.replace(LABEL_CURVES_MARKER, docs_pages.label_curves(page_dir=depth))
    if PLATEAU_LEVERS_MARKER in markdown:
        markdown = markdown.replace(PLATEAU_LEVERS_MARKER, docs_pages.plateau_levers_table())
    if SHIPPED_TILES_MARKER in markdown:
        markdown = markdown.replace(SHIPPED_TILES_MARKER, docs_pages.shipped_tiles_table())
    if TILE_LEVERS_MARKER in markdown:
        markdown = markdown.replace(TILE_LEVERS_MARKER, docs_pages.tile_levers_table())
    if UNIVERSAL_MARKER in markdown:
        markdown = markdown.replace(UNIVERSAL_MARKER, docs_text_tables.universal_table())
    if LABEL_POINTS_MARKER in markdown:
        markdown = markdown.replace(LABEL_POINTS_MARKER, docs_text_tables.label_points_table())
    markdown = docs_text_tables.fill_robustness_starts(markdown)
    if uri == "reliability.md":
        markdown = markdown.rstrip() + "\n\n" + docs_pages.faults_section(page_dir=depth)
    return _REPO_RESULTS_LINK.sub(lambda m: _published(m, uri), markdown)
