"""One-command GPU check: the gpu-marked tests and the reward throughput on ResNet-20 and LeNet-5, as one table.

    make gpu-check                                  # here, with the venv (no CUDA: the dry version)
    python3 -m benchmarks.studies.gpu_check --out "$OUT"    # on a GPU machine with torch and no network
    make gpu-wheels                                 # here, once: the wheels that machine lacks, into .gpu-wheels/

Steps, each under a timeout, about 8 minutes in all (``--budget``):

1. install: the packages our imports need that this python lacks (``PACKAGES``), from the wheels in ``--wheels``
   (``pip install --no-index --no-deps --target``, torch untouched), then the repository root on ``PYTHONPATH``.
   This module imports only the standard library at the top, so it runs before any of that is there.
   scipy, scikit-learn and matplotlib are needed too, but their wheels are far too large to carry (about 67 MB):
   they must be installed already (the GPU image has them); numpy's wheel is fetched as a fallback.
2. ``pytest -m gpu`` on the test files that hold gpu-marked tests (tests that need Ray are deselected when Ray is
   absent).
3. ``benchmarks.studies.reward_throughput --synthetic`` (random data of the real shapes, no data files) on ResNet-20
   (3x32x32) and LeNet-5 (1x28x28) at K = 100, B in 1, 16, 64, 256, fp32 and bf16: one run per model and precision,
   each with a share of the time left; a run cut short keeps the cells it printed.

Writes ``gpu_check.md`` (the table; printed too), ``gpu_check.jsonl`` (the throughput records) and ``gpu_check.log``
into ``--out`` (default ``$OUT`` when set, else ``benchmarks/results/gpu_check``). Without CUDA it runs a dry version
(LeNet-5, K = 2, B in 1 and 2, fp32; the gpu tests skip) and says so in the table. The exit status is 1 when the
install, a gpu test or a throughput run failed (a run cut short by the time budget is not a failure).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".gpu-wheels"
# (import name, distribution): what pruning_env, agents, benchmarks.studies.reward_throughput and the gpu tests import.
# ``make gpu-wheels`` fetches these at the versions of this venv.
PACKAGES = (
    ("numpy", "numpy"), ("gymnasium", "gymnasium"), ("farama_notifications", "Farama-Notifications"),
    ("pettingzoo", "pettingzoo"), ("stable_baselines3", "stable_baselines3"), ("supersuit", "SuperSuit"),
    ("tinyscaler", "tinyscaler"), ("tyro", "tyro"), ("docstring_parser", "docstring_parser"),
    ("typeguard", "typeguard"), ("typing_extensions", "typing_extensions"), ("cloudpickle", "cloudpickle"),
    ("tqdm", "tqdm"), ("pytest", "pytest"), ("pluggy", "pluggy"), ("iniconfig", "iniconfig"),
    ("packaging", "packaging"), ("pygments", "Pygments"), ("hypothesis", "hypothesis"),
    ("sortedcontainers", "sortedcontainers"),
)
# Needed as well but never carried (wheels about 67 MB, over the device tool's 64 MiB): must be installed already.
PREINSTALLED = (("scipy", "scipy"), ("sklearn", "scikit-learn"), ("matplotlib", "matplotlib"), ("joblib", "joblib"),
                ("threadpoolctl", "threadpoolctl"))
MINIMUM = {"typing_extensions": (4, 13)}  # tyro's floor; an older one is shadowed by the wheel's
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64")
MODELS = {"resnet20-cifar10": "ResNet-20 (3x32x32)", "lenet5-mnist": "LeNet-5 (1x28x28)"}
CELL = re.compile(r"^\s+B=(\d+): ([\d.]+) evaluations/s, x([\d.]+) the sequential path, .*, ([\d.]+) MiB per copy$")
SKIPPED = re.compile(r"^\s+B=(\d+): skipped")
GPU_RAY_TEST = re.compile(r"((?:^@.*\n)*)def (test_\w+)\([^)]*ray_cluster", re.MULTILINE)  # decorators, name


def version_tuple(text: str) -> tuple[int, ...]:
    """The leading integers of a version string: ``"4.16.0rc1"`` -> ``(4, 16, 0)``."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def missing(packages=PACKAGES) -> list[str]:
    """Distributions of ``packages`` whose module this python cannot import (or older than ``MINIMUM``)."""
    out = []
    for module, dist in packages:
        if importlib.util.find_spec(module) is None:
            out.append(dist)
        elif module in MINIMUM:
            try:
                if version_tuple(importlib.metadata.version(dist)) < MINIMUM[module]:
                    out.append(dist)
            except importlib.metadata.PackageNotFoundError:
                pass
    return out


def fetch_wheels(dest: Path, python_version: str) -> int:
    """``make gpu-wheels``: download ``PACKAGES`` at this venv's versions for CPython ``python_version`` on
    manylinux x86-64 into ``dest``, and drop any other version left there (two versions stop the install)."""
    pins = {dist: importlib.metadata.version(dist) for _, dist in PACKAGES}
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), "--only-binary=:all:",
               "--no-deps", "--implementation", "cp", "--python-version", python_version]
    command += [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command += [f"{dist}=={version}" for dist, version in pins.items()]
    print(" ".join(command))
    if subprocess.run(command).returncode:
        return 1
    wanted = {(normalize(dist), version) for dist, version in pins.items()}
    for wheel in dest.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        if (normalize(name), version) not in wanted:
            print(f"removing {wheel.name} (not a pinned version)")
            wheel.unlink()
    wheels = sorted(dest.glob("*.whl"))
    total = sum(wheel.stat().st_size for wheel in wheels)
    print("\n".join(f"{wheel.stat().st_size / 2**20:8.2f} MiB  {wheel.name}" for wheel in wheels))
    print(f"{len(wheels)} wheels, {total / 2**20:.1f} MiB in {dest}")
    return 0


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def install(wheels: Path, site: Path, log) -> tuple[list[str], str]:
    """Install the missing ``PACKAGES`` from ``wheels`` into ``site`` (put first on ``sys.path``); returns the
    distributions installed and an error ('' when none)."""
    absent = [dist for _, dist in PREINSTALLED if dist in missing(PREINSTALLED)]
    if absent:
        return [], f"not installed and not carried (too large): {', '.join(absent)}"
    needed = missing()
    if not needed:
        return [], ""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
               "--disable-pip-version-check", "--upgrade", "--find-links", str(wheels), "--target", str(site), *needed]
    log(f"$ {' '.join(command)}\n")
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    log(done.stdout + done.stderr)
    if done.returncode:
        return needed, f"pip install from {wheels} failed (run `make gpu-wheels` here and carry {wheels.name})"
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    still = missing()
    return needed, f"still missing after the install: {', '.join(still)}" if still else ""


def run_step(command: list[str], timeout: float, env: dict[str, str], log) -> tuple[int | None, str]:
    """Run ``command`` from the repository root, its output echoed and logged; ``None`` as status when it was killed
    at ``timeout`` seconds (with its process group)."""
    log(f"$ {' '.join(command)}  (timeout {timeout:.0f} s)\n")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    lines: list[str] = []

    def pump() -> None:
        for line in process.stdout:
            lines.append(line)
            log(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        status: int | None = process.wait(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        status = None
        log(f"[killed at the {timeout:.0f} s timeout]\n")
    reader.join(5)
    return status, "".join(lines)


def gpu_test_files() -> tuple[list[str], list[str]]:
    """The test files holding gpu-marked tests, and the node ids of the gpu tests that need a Ray cluster."""
    files, ray_tests = [], []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        source = path.read_text()
        if "pytest.mark.gpu" in source:
            files.append(f"tests/{path.name}")
            ray_tests += [f"tests/{path.name}::{name}" for marks, name in GPU_RAY_TEST.findall(source) if "mark.gpu" in marks]
    return files, ray_tests


def parse_cells(output: str) -> dict[int, dict]:
    """The cells ``benchmarks.studies.reward_throughput`` printed, by B."""
    cells = {}
    for line in output.splitlines():
        if match := CELL.match(line):
            batch, rate, ratio, mib = match.groups()
            cells[int(batch)] = {"evaluations_per_s": float(rate), "ratio_to_sequential": float(ratio),
                                 "mib_per_copy": float(mib)}
        elif match := SKIPPED.match(line):
            cells[int(match.group(1))] = {"note": "skipped (projected too slow)"}
    return cells


def table(rows: list[dict], header: list[str]) -> str:
    lines = [*header, "", "| model | dtype | B | evaluations/s | x sequential | peak MiB | MiB per copy |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        if "evaluations_per_s" in row:
            lines.append(f"| {row['model']} | {row['dtype']} | {row['batch']} | {row['evaluations_per_s']:.2f} | "
                         f"{row['ratio_to_sequential']:.2f} | {row['mib_per_copy'] * row['batch']:.0f} | "
                         f"{row['mib_per_copy']:.1f} |")
        else:
            lines.append(f"| {row['model']} | {row['dtype']} | {row['batch']} | {row['note']} | | | |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder of the results ($OUT when set)")
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="folder of the wheels to install from")
    parser.add_argument("--site", type=Path, default=Path(tempfile.gettempdir()) / "pruning_env_gpu_site",
                        help="where the missing packages are installed")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check")
    parser.add_argument("--dry", action="store_true", help="the dry version even when CUDA is available")
    parser.add_argument("--fetch-wheels", action="store_true", help="download the wheels into --wheels and exit")
    parser.add_argument("--python-version", default="3.12", help="of the wheels --fetch-wheels downloads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels(args.wheels, args.python_version)
    deadline = time.monotonic() + args.budget
    out = args.out or Path(os.environ.get("OUT") or ROOT / "benchmarks/results/gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "gpu_check.log", "w")  # closed when the process exits

    def log(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()
        log_file.write(text)
        log_file.flush()

    failures: list[str] = []
    installed, error = install(args.wheels, args.site, log)
    if error:
        text = table([], [f"# GPU check not run: the install failed ({error})"])
        (out / "gpu_check.md").write_text(text)
        log("\n" + text)
        return 1
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([*([str(args.site)] if installed else []), str(ROOT),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    import torch  # present on both machines; imported after the install all the same

    dry = args.dry or not torch.cuda.is_available()
    device = "cpu" if dry else "cuda"
    name = "CPU" if dry else torch.cuda.get_device_name(0)
    log(f"device {name}, torch {torch.__version__}, python {sys.version.split()[0]}; installed: "
        f"{', '.join(installed) or 'nothing (all present)'}\n")

    files, ray_tests = gpu_test_files()
    deselect = [] if importlib.util.find_spec("ray") else ray_tests
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *files]
    command += [arg for test in deselect for arg in ("--deselect", test)]
    status, output = run_step(command, min(180.0, 0.4 * (deadline - time.monotonic())), env, log)
    summary = next((line.strip("= ") for line in reversed(output.splitlines()) if line.strip()), "no output")
    tests = summary + (f"; Ray absent, so deselected: {', '.join(deselect)}" if deselect else "")
    if status != 0:
        failures.append("gpu tests " + ("timed out" if status is None else f"exit {status}"))

    steps, batches = (2, (1, 2)) if dry else (100, (1, 16, 64, 256))
    runs = [("lenet5-mnist", "fp32")] if dry else [(task, precision) for task in ("lenet5-mnist", "resnet20-cifar10")
                                                   for precision in ("fp32", "bf16")]
    weights = {"lenet5-mnist": 1.0, "resnet20-cifar10": 2.0}
    rows, records = [], []
    scratch = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    for index, (task, precision) in enumerate(runs):
        share = weights[task] / sum(weights[t] for t, _ in runs[index:])
        timeout = (deadline - time.monotonic()) * share
        command = [sys.executable, "-m", "benchmarks.studies.reward_throughput", "--synthetic", "--device", device,
                   "--tasks", task, "--precisions", precision, "--batches", *map(str, batches), "--steps", str(steps),
                   "--sequential-plans", "2" if dry else "3", "--tau-plans", "0", "--out", str(scratch),
                   "--label", f"_{task}_{precision}", "--max-cell-seconds", "60" if dry else "100000",
                   "--matmul-size", "64" if dry else "2048"]
        if timeout < 20:
            status, output = None, ""
        else:
            status, output = run_step(command, timeout, env, log)
        cells = parse_cells(output)
        last = output.strip().splitlines()[-1][:80] if output.strip() else ""
        reason = ("not reached (time budget)" if timeout < 20 else "cut short (time budget)" if status is None
                  else "missing from the output" if status == 0 else f"failed (exit {status}): {last}")
        if status not in (0, None):
            failures.append(f"throughput {task} {precision} exit {status}")
        for batch in batches:
            rows.append({"model": MODELS[task], "dtype": precision, "batch": batch, **cells.get(batch, {"note": reason})})
        stem = scratch / f"reward_throughput_{device}_{task}_{precision}.jsonl"
        if stem.exists():
            records += stem.read_text().splitlines()

    header = [f"# GPU check on {name} (torch {torch.__version__}, K = {steps}, synthetic data of the real shapes)", ""]
    if dry:
        header += ["**Dry run on CPU (no CUDA)**: LeNet-5 only, K = 2, B in 1 and 2, fp32; the gpu tests skip. "
                   "MiB on CPU: parameters, gradients and Adam moments only.", ""]
    header += [f"gpu tests (`pytest -m gpu`): {tests}", "",
               "x sequential: against the one-copy path timed in the same run"
               + ("." if dry else "; peak MiB: the measured peak allocation of the B copies above the model and data "
                                  "(B x MiB per copy).")
               + f" Total {args.budget - (deadline - time.monotonic()):.0f} s."]
    if failures:
        header.append(f"FAILED: {'; '.join(failures)}")
    text = table(rows, header)
    (out / "gpu_check.md").write_text(text)
    (out / "gpu_check.jsonl").write_text("".join(record + "\n" for record in records))
    shutil.rmtree(scratch, ignore_errors=True)
    log("\n" + text + f"\nwrote {out / 'gpu_check.md'}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
