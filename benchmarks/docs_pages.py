"""The documentation site's results pages, generated at build time from the committed reports (a MkDocs hook).

Every Markdown report under ``benchmarks/results/reference`` becomes ``results/<name>.md`` of the site, with a
first line that names the command that produced it; the PNGs beside a report are copied to ``results/<name>/``
and shown under it; ``results/index.md`` lists the pages. Nothing is copied by hand: promote a new reference
(``python -m benchmarks.promote SUITE``) and the next ``make docs`` shows it, a report this file does not know yet
included (under "Other reports").

    hooks:                               # mkdocs.yml
      - benchmarks/docs_pages.py

    results_files(REFERENCE)             # {"results/quick.md": "...", "results/quick/quick.png": Path(...), ...}

What the generation fixes so that ``mkdocs build --strict`` passes without editing a report: a relative image
link (``![convergence](oracle_convergence.png)``) points at the copied PNG, a relative link to anything else
becomes inline code (it has no page on the site), and a report without a ``#`` title gets one. Standard library
only: the hook runs in the docs build, which imports neither torch nor this project's packages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

REFERENCE = Path(__file__).resolve().parent / "results" / "reference"
"""The committed reports (``benchmarks.promote`` writes them)."""
RESULTS = "results"
"""The site folder of the generated pages."""
NAV_TITLE = "Results"
"""The ``mkdocs.yml`` nav entry (``- Results: results/index.md``) that becomes the section of generated pages."""


class Source(NamedTuple):
    """What a reference report is and the command that produced it."""

    title: str
    command: str
    section: str
    summary: str
    recorded: bool = True
    """False where the run's command line was not recorded: ``command`` is then rebuilt from the report's settings
    and records, and the page says so."""
    note: str = ""
    """What was done beside the command (shown after it)."""

    def commands(self) -> str:
        """The command as Markdown: each command (``A, then B``) in its own code span, the note after them."""
        text = ", then ".join(f"`{part}`" for part in self.command.split(", then "))
        return f"{text} ({self.note})" if self.note else text


SUITE = "Benchmark suites"
STUDY = "Studies"
OTHER = "Other reports"

SOURCES: dict[str, Source] = {
    "short": Source("Default suite at initialization (short)", "make bench", SUITE,
                    "every controller on mlp-digits at 0.995, 5 seeds, 48 reward evaluations per learner and searcher",
                    note="the first of its two suites; alone: make bench SUITE=short"),
    "short_trained": Source("Default suite after training (short_trained)", "make bench", SUITE,
                            "cnn-digits-trained at 0.8, 5 seeds, 600 zero-step evaluations per learner and searcher: "
                            "zero-shot and after a 50-step fine-tuning",
                            note="the second of its two suites; alone: make bench SUITE=short_trained"),
    "quick": Source("Quick suite", "make bench SUITE=quick", SUITE,
                    "the same cells with 5 seeds and 200 reward evaluations, with the sample-efficiency table"),
    "flops": Source("FLOPs budget", "make bench SUITE=flops", SUITE,
                    "every controller on cnn-digits with 0.95 and 0.98 of the MACs removed"),
    "flops_sweep": Source(
        "FLOPs budget: the heuristics' sweep",
        "python -m benchmarks.run --suite flops --sparsities 0.5 0.7 0.8 0.9 0.95 0.98 --seeds 0 1 --only dense "
        "uniform er erk lamp random global_magnitude global_snip global_grasp global_synflow "
        "--out benchmarks/results/reference/flops_sweep",
        SUITE, "the heuristics on cnn-digits-flops over 0.5-0.98: where the flops suite's targets come from", recorded=False),
    "mnist": Source(
        "MNIST: LeNet-300-100",
        "python -m benchmarks.run --suite mnist --tasks lenet300-mnist --sparsities 0.95 0.98 --train-checkpoints False",
        SUITE, "every controller on LeNet-300-100 with real MNIST at SNIP's 0.95 and 0.98, 3 seeds"),
    "mnist_lenet5": Source(
        "MNIST: LeNet-5-Caffe (reduced)",
        "python -m benchmarks.run --suite mnist --tasks lenet5-mnist --sparsities 0.99 --seeds 0 "
        "--train-checkpoints False --only dense uniform er erk lamp random global_magnitude global_snip global_grasp "
        "global_synflow cma_es mappo --out benchmarks/results/reference/mnist_lenet5",
        SUITE, "the heuristics, CMA-ES and MAPPO on LeNet-5-Caffe at 0.99, one seed"),
    "posttrain": Source("Pruning trained networks (posttrain)", "make bench SUITE=posttrain", SUITE,
                        "every controller on the trained digits networks at 0.8 and 0.9: zero-shot and after a 50-step "
                        "fine-tuning"),
    "posttrain_mnist": Source("Pruning trained LeNets (posttrain_mnist)", "make bench SUITE=posttrain_mnist", SUITE,
                              "every controller on LeNet-300-100 and LeNet-5 trained on MNIST at 0.95 and 0.98: "
                              "zero-shot and after a 100-step fine-tuning"),
    "benchmarl": Source("BenchMARL next to ours", "make bench SUITE=benchmarl", SUITE,
                        "BenchMARL's MAPPO, IPPO and IQL beside our MAPPO and the best heuristics on mlp-digits"),
    "generalize": Source("Generalization (zero-shot)", "make bench SUITE=generalize", SUITE,
                         "one controller trained on the digits family, zero-shot on held-out networks and inits"),
    "oracle": Source("Oracle plans", "python -m benchmarks.studies.oracle", STUDY,
                     "plans searched on the ground truth: the headroom over the best heuristic per cell"),
    "learning_curves": Source(
        "Learning curves", "python -m benchmarks.studies.learning_curves --seeds-per-target 3 5", STUDY,
        "proxy reward against evaluations spent, and each final plan's test accuracy, per instance", recorded=False),
    "learning_curves_0995": Source(
        "Learning curves at 0.995 (the default cell)",
        "python -m benchmarks.studies.learning_curves --targets 0.995 --controllers mappo cma_es random_search --out DIR, "
        "then python -m benchmarks.promote learning_curves_0995 --out DIR",
        STUDY, "MAPPO, CMA-ES and random search on mlp-digits at 0.995: proxy reward against evaluations, final accuracy",
        note="its files renamed learning_curves_0995.* before promoting"),
    "learning_curves_cma_orders2": Source(
        "Learning curves: CMA-ES on 2 minibatch orders",
        "python -m benchmarks.studies.learning_curves --targets 0.99 --controllers cma_es --episodes 150 --reward-orders 2 "
        "--out DIR",
        STUDY, "CMA-ES with the reward averaged over 2 minibatch orders, at the cost of the 1-order run", recorded=False,
        note="its files then renamed learning_curves_cma_orders2.*"),
    "mappo_recipe_short_trained": Source(
        "MAPPO recipe on short_trained", "python -m benchmarks.studies.mappo_recipe --suite short_trained", STUDY,
        "variants of the benchmark's MAPPO beside the heuristics on cnn-digits-trained at 0.8, zero-shot"),
    "mappo_recipe_short": Source(
        "MAPPO recipe on short", "python -m benchmarks.studies.mappo_recipe --suite short --variants default best lr1e-2",
        STUDY, "variants of the benchmark's MAPPO beside the heuristics on mlp-digits at 0.995"),
    "mappo_diagnosis": Source("MAPPO diagnosis", "python -m benchmarks.studies.mappo_diagnosis", STUDY,
                              "why MAPPO's mean plan does not move on one instance: ruggedness and PPO variants"),
    "reward_validity": Source(
        "Reward validity (mlp-digits, 0.995)",
        "python -m benchmarks.studies.reward_validity --out DIR, "
        "then python -m benchmarks.promote reward_validity --out DIR",
        STUDY, "each reward variant's search at an equal compute budget: realized gain and share of the oracle headroom"),
    "fidelity_mlp-digits_0.98": Source(
        "Reward fidelity (mlp-digits, 0.98)",
        "python -m benchmarks.studies.fidelity --task mlp-digits --target 0.98 --reward neg_loss accuracy "
        "--reward-steps 25 50 100 200 --noise-ceiling",
        STUDY, "rank correlation of each proxy reward with final test accuracy, against its cost", recorded=False),
    "fidelity_mlp-digits_0.98_orders2": Source(
        "Reward fidelity: 2 minibatch orders",
        "python -m benchmarks.studies.fidelity --reward neg_loss --reward-steps 50 100 --reward-orders 2",
        STUDY, "the same plans with every proxy averaged over 2 minibatch orders"),
    "snip_table1": Source(
        "SNIP's Table 1",
        "python -m benchmarks.studies.snip_table1 --out benchmarks/results/reference/snip_table1 --inits torch --schedules shipped paper, "
        "then python -m benchmarks.studies.snip_table1 --out benchmarks/results/reference/snip_table1 --inits paper --schedules shipped",
        STUDY, "global SNIP on LeNet-300-100 under our schedule and the paper's, against the paper's errors"),
    "numerics": Source("Numerics across CPU kernels", "python -m benchmarks.studies.numerics", STUDY,
                       "the same plans trained in fresh processes under other CPU kernel selections"),
    "env_speed_trained": Source(
        "Env speed after training (zero-step reward)",
        "python -m benchmarks.studies.env_speed --tasks mlp-digits-trained cnn-digits-trained --threads 1 "
        "--memory-episodes 0 --repeats 15 --out benchmarks/results/reference/env_speed_trained/env_speed_trained.md",
        STUDY, "evaluations/s of the one-forward-pass reward on the trained networks, one CPU thread"),
    "env_speed_lenet_trained": Source(
        "Env speed after training: the MNIST LeNets",
        "python -m benchmarks.studies.env_speed --tasks lenet300-mnist lenet5-mnist --prune-at trained --threads 1 "
        "--memory-episodes 0 --repeats 15 --device cpu "
        "--out benchmarks/results/reference/env_speed_lenet_trained/env_speed_lenet_trained.md",
        STUDY, "evaluations/s of the zero-step reward on the trained LeNet-300-100 and LeNet-5, one CPU thread"),
    "reward_throughput_cpu": Source(
        "Reward throughput (CPU)",
        "python -m benchmarks.studies.reward_throughput --device cpu --tasks mlp-digits lenet5-mnist --threads 2",
        STUDY, "the batched reward path: evaluations/s against B, fp32 and bf16, bf16's Kendall tau", recorded=False),
    "reward_throughput_cpu_mlp_1thread": Source(
        "Reward throughput (CPU, 1 thread)",
        "python -m benchmarks.studies.reward_throughput --device cpu --tasks mlp-digits --precisions fp32 --batches 1 4 16 "
        "--threads 1 --tau-plans 0 --label _mlp_1thread",
        STUDY, "mlp-digits with one torch thread, the benchmark workers' setting", recorded=False),
    "reward_throughput_cpu_resnet20_k20": Source(
        "Reward throughput (CPU, ResNet-20, K = 20)",
        "python -m benchmarks.studies.reward_throughput --device cpu --tasks resnet20-cifar10 --steps 20 --precisions fp32 "
        "--batches 1 4 --tau-plans 0 --label _resnet20_k20",
        STUDY, "ResNet-20 on CIFAR-shaped data at K = 20", recorded=False),
}
"""Known reports by page name, in the order of the results index; a report not listed here still gets a page."""

FIGURE_CAPTIONS = {"profile": "performance profile", "efficiency": "sample efficiency",
                   "tradeoff": "rank correlation and regret against cost", "convergence": "convergence"}
"""Alt text of a report's PNGs by the suffix after the report's name (``quick_profile.png``: ``profile``); the
PNG named like the report (``quick.png``) gets the page's title."""

_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


class Report(NamedTuple):
    """One report: its page name, its Markdown file and the PNGs that belong to it."""

    name: str
    path: Path
    figures: tuple[Path, ...]

    @property
    def source(self) -> Source:
        return SOURCES.get(self.name) or Source(
            self.name.replace("_", " "), "(not recorded: add it to SOURCES in benchmarks/docs_pages.py)", OTHER,
            f"benchmarks/results/reference/{self.path.parent.name}/{self.path.name}")


def page_name(path: Path, reference: Path) -> str:
    """``quick.md`` -> ``quick``; a report in a folder is named by the folder (``flops_sweep/flops.md`` ->
    ``flops_sweep``), or folder and file when the folder holds several reports."""
    relative = path.relative_to(reference)
    if len(relative.parts) == 1:
        return path.stem
    siblings = list(path.parent.glob("*.md"))
    folder = "_".join(relative.parts[:-1])
    return folder if len(siblings) == 1 else f"{folder}_{path.stem}"


def find_reports(reference: Path = REFERENCE) -> list[Report]:
    """Every ``*.md`` under ``reference`` with its PNGs: a PNG belongs to the report of its folder whose file name
    it extends the most (``x_orders2_tradeoff.png`` belongs to ``x_orders2.md``, not to ``x.md``)."""
    paths = sorted(reference.rglob("*.md"))
    reports = []
    for path in paths:
        stems = [other.stem for other in path.parent.glob("*.md")]
        figures = []
        for png in sorted(path.parent.glob("*.png")):
            owners = [stem for stem in stems if png.stem == stem or png.stem.startswith(stem + "_")]
            if owners and max(owners, key=len) == path.stem:
                figures.append(png)
        reports.append(Report(page_name(path, reference), path, tuple(figures)))
    order = {name: i for i, name in enumerate(SOURCES)}
    return sorted(reports, key=lambda report: (order.get(report.name, len(order)), report.name))


def _caption(report: Report, png: Path) -> str:
    suffix = png.stem[len(report.path.stem):].lstrip("_")
    return FIGURE_CAPTIONS.get(suffix, png.stem.replace("_", " ")) if suffix else report.source.title


def page_markdown(report: Report, reference: Path = REFERENCE) -> str:
    """The page of one report: a title, the command that produced it, the report as committed (its relative links
    made to work on the site) and its figures not already shown in it."""
    text = report.path.read_text(encoding="utf-8")
    figures = {png.name: png for png in report.figures}
    shown: set[str] = set()

    def link(match: re.Match[str]) -> str:
        image, label, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):  # a URL, an anchor or a site path: as it is
            return match.group(0)
        if image and target in figures:
            shown.add(target)
            return f"![{label}]({report.name}/{target})"
        if image:
            return f"*(figure `{target}` is not committed beside the report)*"
        return f"{label} (`{target}`)" if label and label != target else f"`{target}`"

    text = _LINK.sub(link, text).strip() + "\n"
    lines = text.splitlines()
    source = report.source
    relative = report.path.relative_to(reference.parent.parent.parent).as_posix()
    produced = (f"Produced by {source.commands()}" if source.recorded else
                f"Produced by the equivalent of {source.commands()}, rebuilt from the report's settings and records "
                "(the run's command line was not recorded)")
    header = f"> {produced}; generated at build time from `{relative}` (edit the report, not this page)."
    if lines and lines[0].startswith("# "):
        body = [lines[0], "", header, "", *lines[1:]]
    else:
        body = [f"# {source.title}", "", header, "", *lines]
    rest = [png for name, png in figures.items() if name not in shown]
    if rest:
        body += ["", "## Figures", ""]
        body += [f"![{_caption(report, png)}]({report.name}/{png.name})\n" for png in rest]
    return "\n".join(body).rstrip() + "\n"


def index_markdown(reports: list[Report]) -> str:
    """``results/index.md``: the generated pages by section, with what each holds and its command."""
    lines = [
        "# Results",
        "",
        "Every page of this section is generated when the site is built, from the reports committed in "
        "`benchmarks/results/reference/` (`make promote SUITE=...` writes them; see [the benchmark](../benchmark.md) "
        "and [the studies](../studies.md)). Each page starts with the command that produced its report; the "
        "records (`.jsonl`) stay in that folder.",
    ]
    for section in (SUITE, STUDY, OTHER):
        rows = [report for report in reports if report.source.section == section]
        if not rows:
            continue
        lines += ["", f"## {section}", "", "| page | what it holds | command |", "|---|---|---|"]
        for report in rows:
            command = report.source.commands().replace("|", "\\|")
            lines.append(f"| [{report.source.title}]({report.name}.md) | {report.source.summary} | {command} |")
    return "\n".join(lines) + "\n"


def results_files(reference: Path = REFERENCE) -> dict[str, str | Path]:
    """Every generated file of the site by its path under ``docs/``: Markdown as text, PNGs as their source path."""
    reports = find_reports(reference)
    files: dict[str, str | Path] = {f"{RESULTS}/index.md": index_markdown(reports)}
    for report in reports:
        files[f"{RESULTS}/{report.name}.md"] = page_markdown(report, reference)
        for png in report.figures:
            files[f"{RESULTS}/{report.name}/{png.name}"] = png
    return files


# MkDocs hooks (mkdocs.yml: hooks: [benchmarks/docs_pages.py]) ---------------------------------------------------


def on_config(config: Any) -> Any:
    """Expand the nav's ``Results: results/index.md`` into the section of generated pages."""
    nav = config.get("nav")
    if not nav:
        return config
    pages = [f"{RESULTS}/index.md"] + [{report.source.title: f"{RESULTS}/{report.name}.md"}
                                        for report in find_reports()]
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and entry.get(NAV_TITLE) == f"{RESULTS}/index.md":
            nav[i] = {NAV_TITLE: pages}
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages and figures to the site's files."""
    from mkdocs.structure.files import File

    for uri, content in results_files().items():
        if isinstance(content, Path):
            files.append(File.generated(config, uri, abs_src_path=str(content)))
        else:
            files.append(File.generated(config, uri, content=content))
    return files
