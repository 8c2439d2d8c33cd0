"""The documentation site: ``mkdocs build --strict`` succeeds and holds its key pages, the results pages are
generated from every committed report (``benchmarks/docs_pages.py``), and the pages' own Python examples stay in
step with the code (their imports resolve; slow: each runs in a fresh interpreter). The longer examples are files,
``examples/*.py``, that the pages include (``--8<--``): tests/test_examples.py checks and runs those, once."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_readme import RUN_IN_PROCESS, run_block

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("index", "environment", "controllers", "integrations", "benchmark", "studies", "changelog")
"""The hand-written pages (``docs/<name>.md``), each built to ``<name>/index.html`` (``index.html`` for index)."""
API_IDS = {
    "environment": ("pruning_env.parallel.PruningEnv", "pruning_env.gym_env.PruningControllerEnv",
                    "pruning_env.multi_task.MultiTaskPruningEnv", "pruning_env.plan_env.PlanEnv",
                    "pruning_env.plan.EpisodeResult",
                    "pruning_env.budget.project_to_budget", "pruning_env.pools.PlanRequest"),
    "controllers": ("agents.base.Controller", "agents.base.TrainableController", "agents.base.SearchController",
                    "agents.base.controller_kind", "agents.base.has_update_probe"),
}
"""Anchors the API reference must render (mkdocstrings ids), by page."""
BUILD_TIMEOUT_S = 600
BLOCK_TIMEOUT_S = 900


def load_docs_pages():
    """``benchmarks/docs_pages.py`` loaded as MkDocs loads a hook (by path, no package import)."""
    spec = importlib.util.spec_from_file_location("docs_pages_under_test", ROOT / "benchmarks" / "docs_pages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


docs_pages = load_docs_pages()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by the strict build into a temporary folder (the repository's site/ untouched)."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    return out


def html_of(site: Path, page: str) -> str:
    path = site / "index.html" if page == "index" else site / page / "index.html"
    assert path.is_file(), f"{path.relative_to(site)} was not built"
    return path.read_text(encoding="utf-8")


def table_count(markdown: str) -> int:
    """Tables in Markdown: their header separator lines (``|---|:--:|``)."""
    return len(re.findall(r"^\|[ :\-|]+\|\s*$", markdown, re.M))


# The build -----------------------------------------------------------------------------------------------------


def test_strict_build_has_every_page(site: Path):
    for page in PAGES:
        assert "<h1" in html_of(site, page), f"{page}: no title"
    assert (site / "search" / "search_index.json").is_file()


def test_api_reference_is_rendered(site: Path):
    for page, ids in API_IDS.items():
        html = html_of(site, page)
        missing = [identifier for identifier in ids if f'id="{identifier}"' not in html]
        assert not missing, f"{page}: the API reference lacks {missing}"


def test_results_pages_are_built_from_every_report(site: Path):
    """Every committed report has its page, with the command that produced it, every table rendered as a table
    (a table that breaks shows up as a paragraph of pipes) and its figures beside it."""
    reports = docs_pages.find_reports()
    assert {"short", "quick", "flops", "mnist", "generalize", "learning_curves", "benchmarl"} <= {
        report.name for report in reports}
    index = html_of(site, "results")
    for report in reports:
        html = html_of(site, f"results/{report.name}")
        assert "Produced by" in html, report.name
        assert f'href="{report.name}/"' in index, f"results/index does not link {report.name}"
        expected = table_count(docs_pages.page_markdown(report))
        assert html.count("<table>") == expected, f"{report.name}: {html.count('<table>')} tables, {expected} expected"
        for png in report.figures:
            assert (site / "results" / report.name / png.name).is_file(), f"{png.name} was not copied"
            assert f'src="{png.name}"' in html, f"{report.name} does not show {png.name}"


def test_build_fetches_nothing(site: Path):
    """Offline-capable: no Google Fonts, no asset from another host in the pages' head."""
    for page in PAGES:
        head = html_of(site, page).split("</head>", 1)[0]
        assert "fonts.googleapis" not in head and "fonts.gstatic" not in head, page
        assert not re.search(r'<(?:link|script)[^>]+(?:href|src)="https?://', head), page


# The generation, without MkDocs ---------------------------------------------------------------------------------


def test_every_reference_report_and_figure_has_a_page():
    reference = docs_pages.REFERENCE
    reports = docs_pages.find_reports()
    assert sorted(report.path for report in reports) == sorted(reference.rglob("*.md"))
    names = [report.name for report in reports]
    assert len(names) == len(set(names)), f"two reports share a page name: {names}"
    figures = [png for report in reports for png in report.figures]
    assert len(figures) == len(set(figures))
    files = docs_pages.results_files()
    assert files["results/index.md"].count("](") >= len(reports)
    for report in reports:
        assert report.name in docs_pages.SOURCES, f"{report.name}: add its command to SOURCES"


def test_a_png_belongs_to_the_report_whose_name_it_extends_most():
    by_name = {report.name: report for report in docs_pages.find_reports()}
    orders = {png.name for png in by_name["fidelity_mlp-digits_0.98_orders2"].figures}
    assert orders == {"fidelity_mlp-digits_0.98_orders2.png", "fidelity_mlp-digits_0.98_orders2_tradeoff.png"}
    assert not orders & {png.name for png in by_name["fidelity_mlp-digits_0.98"].figures}
    assert {png.name for png in by_name["flops_sweep"].figures} == {"flops.png"}


def test_links_are_fixed_in_the_generation_not_in_the_report(tmp_path: Path):
    reference = tmp_path / "benchmarks" / "results" / "reference"
    folder = reference / "oracle"  # a study's folder of the reference
    folder.mkdir(parents=True)
    (folder / "oracle.md").write_text(
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n![convergence](oracle_convergence.png)\n![gone](oracle_gone.png)\n"
        "See [the records](oracle.jsonl) and [rliable](https://github.com/google-research/rliable).\n",
        encoding="utf-8")
    (folder / "oracle_convergence.png").write_bytes(b"\x89PNG")
    (folder / "oracle_headroom.png").write_bytes(b"\x89PNG")
    [report] = docs_pages.find_reports(reference)
    page = docs_pages.page_markdown(report, reference)
    assert page.startswith("# Oracle plans\n\n> Produced by `python -m benchmarks.studies.oracle`")
    assert "`benchmarks/results/reference/oracle/oracle.md`" in page
    assert "![convergence](oracle/oracle_convergence.png)" in page
    assert "oracle_gone.png` is not committed" in page and "](oracle_gone.png)" not in page
    assert "the records (`oracle.jsonl`)" in page and "(https://github.com/google-research/rliable)" in page
    assert page.count("oracle/oracle_convergence.png") == 1  # shown where the report shows it, not again
    assert "![oracle headroom](oracle/oracle_headroom.png)" in page  # the other figure under "Figures"
    files = docs_pages.results_files(reference)
    assert files["results/oracle/oracle_convergence.png"] == folder / "oracle_convergence.png"


# The examples ---------------------------------------------------------------------------------------------------


SNIPPET = re.compile(r'^-+8<-+\s+"([^"]+)"$')
"""A pymdownx.snippets include line, ``--8<-- "examples/<name>.py"``: the fence shows that file (tests/test_examples.py
runs it), so a fence of such lines only is no example of the page's own."""


def fenced_blocks(path: Path) -> list[tuple[int, str, list[str]]]:
    """The fenced blocks of a page: (line of the opening fence, language: the info string's first word, lines)."""
    blocks, fence, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence, start, lines = (stripped[3:].split() or [""])[0].lower(), number, []
        elif fence is not None and stripped == "```":
            blocks.append((start, fence, lines))
            fence = None
        elif fence is not None:
            lines.append(line)
    assert fence is None, f"{path.name}: the fence opened at line {start} is never closed"
    return blocks


def is_include(lines: list[str]) -> bool:
    return bool(lines) and all(SNIPPET.match(line.strip()) for line in lines)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """The page's own ```python examples: (line of the opening fence, code); fences that only include a file left
    out."""
    return [(start, "\n".join(lines) + "\n") for start, language, lines in fenced_blocks(path)
            if language == "python" and not is_include(lines)]


def included_files(path: Path) -> list[str]:
    """The files a page includes into its code fences (``--8<--`` lines), as written (relative to the repository)."""
    return [SNIPPET.match(line.strip())[1] for _, _, lines in fenced_blocks(path) if is_include(lines)
            for line in lines]


BLOCKS = [(page, line, code) for page in PAGES for line, code in python_blocks(DOCS / f"{page}.md")]
OURS = ("pruning_env", "agents", "benchmarks")


def defined_names(module: str) -> set[str] | None:
    """The names a module of this project binds at its top level (statically), or None if it is not a file here."""
    parts = module.split(".")
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            tree = ast.parse(candidate.read_text(encoding="utf-8"))
            names: set[str] = set()
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names |= {target.id for target in targets if isinstance(target, ast.Name)}
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
            if candidate.name == "__init__.py":  # submodules are importable names of a package
                names |= {child.stem for child in candidate.parent.iterdir()
                          if child.suffix == ".py" or (child / "__init__.py").is_file()}
            return names
    return None


INCLUDES = [(page, name) for page in PAGES for name in included_files(DOCS / f"{page}.md")]
"""(page, file) of every file a page includes (``examples/*.py``: tests/test_examples.py checks and runs them)."""


def test_pages_have_python_examples():
    assert len(BLOCKS) >= 10 and len(BLOCKS) + len(INCLUDES) >= 20  # the parsers find the pages' examples


def assert_imports_exist(code: str, where: str) -> None:
    """``code`` parses, and every name it imports from this project exists there (read statically: renamed or
    removed API fails here in milliseconds, before the slow run)."""
    tree = ast.parse(code, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            names = defined_names(node.module)
            assert names is not None, f"{where}: no module {node.module}"
            missing = [alias.name for alias in node.names if alias.name not in names]
            assert not missing, f"{where}: {node.module} has no {missing}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OURS:
                    assert defined_names(alias.name) is not None, f"{where}: no module {alias.name}"


@pytest.mark.parametrize("page,line,code", [pytest.param(*block, id=f"{block[0]}-L{block[1]}") for block in BLOCKS])
def test_example_compiles_and_its_imports_exist(page: str, line: int, code: str):
    """Every example parses, and every name it imports from this project exists there."""
    assert_imports_exist(code, f"docs/{page}.md:{line}")


def readme_blocks() -> set[str]:
    """The README's ```python blocks: tests/test_readme.py runs those, so an identical example is not run twice."""
    readme = ROOT / "README.md"
    return {code.strip() for _, code in python_blocks(readme)} if readme.exists() else set()


@pytest.mark.slow
@pytest.mark.parametrize("page,line,code", [pytest.param(*block, id=f"{block[0]}-L{block[1]}") for block in BLOCKS])
def test_example_runs(page: str, line: int, code: str):
    """Every example runs to exit status 0 (one the README also holds is left to tests/test_readme.py)."""
    if code.strip() in readme_blocks():
        pytest.skip("the same block is in README.md: tests/test_readme.py runs it")
    if code.strip() in RUN_IN_PROCESS:
        pytest.skip("tests/test_first_contact.py runs this block in process and checks what it computes")
    status, output = run_block(code, BLOCK_TIMEOUT_S, "example")
    where = f"docs/{page}.md block at line {line}"
    assert status is not None, f"{where} did not exit within {BLOCK_TIMEOUT_S} s; its output:\n{output[-6000:]}"
    assert status == 0, f"{where} exited with status {status}; its output:\n{output[-6000:]}"
