# One command each, on a fresh machine: `make book` builds the book, `make test` runs every test.
# Every target creates the virtual environment (.venv) on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP_QUIET := --quiet --disable-pip-version-check
# The book's models are small: one thread per process is fastest, and two processes share the cores.
export OMP_NUM_THREADS ?= 1

.PHONY: all env book site-check test model icl-model depth-models reproduce bench seed-sweep estimators coverage agreement clean

all: book

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) torch==2.13.0 2> >(grep -v "is ignored" >&2)
	$(PY) -m pip install $(PIP_QUIET) -e '.[book,test]' 2> >(grep -v "is ignored" >&2)
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

env: $(STAMP)

# MathJax served with the book, so that its formulas render offline (npm registry, pinned version).
MATHJAX := build/static/mathjax/tex-chtml.js
$(MATHJAX):
	mkdir -p build/npm build/static
	cd build/npm && npm pack --silent mathjax@3.2.2 > /dev/null && tar xzf mathjax-3.2.2.tgz
	rm -rf build/static/mathjax && cp -r build/npm/package/es5 build/static/mathjax

## book: execute every notebook with the quick profile and build the static site into _build/html
## (-W: a cell that fails fails the build); then the browser check, where Chromium is installed
book: env $(MATHJAX)
	$(VENV)/bin/jupyter-book build -W -n --keep-going .
	@echo "The book is at _build/html/index.html"
	@if [ -x $(CHROMIUM) ]; then $(MAKE) --no-print-directory site-check; \
	else echo "No $(CHROMIUM): browser check skipped (make site-check installs Chromium and runs it)"; fi

## site-check: open every page of the built site (_build/html) in headless Chromium with the network limited
## to localhost and check it; builds nothing; installs Debian's chromium and chromium-driver, and selenium,
## where absent; writes benchmarks/results/site_check.json
CHROMIUM := /usr/bin/chromium
SELENIUM := selenium==4.50.0
site-check: env
	@test -x $(CHROMIUM) -a -x /usr/bin/chromedriver || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null; }
	@$(PY) -c "import selenium" 2> /dev/null || $(PY) -m pip install $(PIP_QUIET) $(SELENIUM)
	$(PY) scripts/site_check.py --site _build/html --out benchmarks/results/site_check.json

## test: lint and format check (ruff), library tests (pytest) and notebook tests (nbval) in one run
test: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider -n 2 --dist loadfile --durations=30

## model: rebuild the embedded default model from scratch (deterministic for a fixed seed)
model: env
	$(PY) -m rarelib.storymodel.training --out data/models/story-gptneo --work build/model

## icl-model: rebuild the in-context-learning model of the Markov-chain chapter (data/models/icl-markov)
icl-model: env
	$(PY) -m rarelib.companions.in_context --out data/models/icl-markov

## depth-models: rebuild the depth-2/4/8 story models of the equi-learning chapter (data/models/depth-models)
depth-models: env
	$(PY) scripts/train_depth_models.py

## reproduce: run every chapter with the paper's settings (profiles/paper/*.yaml) into _build/reproduce.
## CLUSTER=local:N | slurm | tcp://host:port first runs the MBAR chapter's paper-scale sampling (replica sets and
## λ = 0 direct samples per observable) as Dask tasks (scripts/reproduce_on_cluster.py) into
## _build/reproduce/cluster, resumable; SLURM options go in CLUSTER_OPTIONS, e.g. "--jobs 4 --cores 8 --memory
## 16GiB --walltime 04:00:00 --queue q --account a". The notebooks still sample in-process: they do not read it yet.
CLUSTER ?=
CLUSTER_OPTIONS ?=
reproduce: env
	mkdir -p _build/reproduce
	$(if $(CLUSTER),$(PY) scripts/reproduce_on_cluster.py --cluster $(CLUSTER) $(CLUSTER_OPTIONS) \
	  --out _build/reproduce/cluster)
	for notebook in notebooks/*.ipynb; do \
	  name=$$(basename $$notebook .ipynb); profile=profiles/paper/$$name.yaml; \
	  $(VENV)/bin/papermill $$notebook _build/reproduce/$$name.ipynb -k python3 -p profile paper \
	    $$( [ -f $$profile ] && echo -f $$profile ) || exit 1; \
	done

## bench: performance measurements; tables on stdout, JSON in benchmarks/results (the seed sweep has its own target)
bench: env
	for script in benchmarks/*.py; do \
	  case "$$(basename $$script)" in common.py|seed_sweep.py) ;; estimators.py|coverage.py|estimate_agreement.py) $(PY) $$script --quick || exit 1;; \
	  *) $(PY) $$script || exit 1;; esac; \
	done

## seed-sweep: every chapter with seeds 1-8 through papermill, two at a time (hours; resumable, run it in parts
## with SEEDS="1 2" CHAPTERS="05 06"); outcomes in benchmarks/results/seed_sweep.json
SEEDS ?= 1 2 3 4 5 6 7 8
CHAPTERS ?=
seed-sweep: env
	$(PY) benchmarks/seed_sweep.py --seeds $(SEEDS) $(if $(CHAPTERS),--chapters $(CHAPTERS))

## estimators: the estimators side by side at the issue's budgets (1e6, 1e7 tokens, 10 seeds; hours, resumable;
## make bench runs its --quick part); results in benchmarks/results/estimators.json
estimators: env
	$(PY) benchmarks/estimators.py

## coverage: coverage of the 96% intervals on 6 random Markov LMs × 3 observables × 20 seeds at 5e5 tokens per run
## (hours, resumable; FULL=1: the issue's 1e7 tokens per run and depth 1e-18; BUDGET=2e6: another; make bench runs
## its --quick part); LADDER=estimate: the one call rarelib.estimate, which places its own ladder;
## results in benchmarks/results/coverage.json (coverage_estimate.json)
coverage: env
	$(PY) benchmarks/coverage.py $(if $(FULL),--full) $(if $(BUDGET),--budget $(BUDGET)) $(if $(LADDER),--ladder $(LADDER))

## agreement: rarelib.estimate against 2e5 direct completions of the embedded model (ARI and Log-Prob tails,
## 1e7 tokens each; hours, resumable); results in benchmarks/results/estimate_agreement.json
agreement: env
	$(PY) benchmarks/estimate_agreement.py

clean:
	rm -rf _build build .pytest_cache .jupyter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
