# The README's two commands:
#   make book   create .venv, install everything, fetch the offline assets, build the book into _build/html
#   make test   the same install, then lint and the full test suite (unit tests, doctests, the book built with -W
#               and read in a headless browser, the grader, every chapter and lab master once more on one thread
#               with every claim held or explained, and strict nbval on every notebook inside a Colab-like
#               environment, see below)
# Helpers: make outputs (re-execute notebooks in place), make book EXECUTE=force (re-execute for one build), make clean.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.efflab-installed
# The CPU wheel that lies on these machines' disk; the package itself asks only torch>=2.2 so Colab keeps its CUDA build.
TORCH_PIN := torch==2.13.0
# Offline book assets, pinned, from the npm registry (not committed, never loaded from a CDN).
MATHJAX := mathjax@3.2.2
REQUIREJS := requirejs@2.3.8
# html-manager 1.x renders ipywidgets 8 state (controls 2.0); myst-nb's own default is 1.0.6 from a CDN.
HTML_MANAGER := @jupyter-widgets/html-manager@1.0.15
ASSETS := _vendor/static/.fetched
# The student's journey: a fresh environment holding only what Google Colab preinstalls for these notebooks (Colab
# ships ipywidgets 7.7.x), plus the test runner. efflab is NOT installed there: each notebook's own setup cell installs
# it from EFFLAB_SOURCE (this checkout, standing in for the repository URL), as it would on Colab.
COLAB_VENV := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.colab-installed
COLAB_PACKAGES := "$(TORCH_PIN)" numpy matplotlib "ipywidgets==7.7.1" scikit-learn tqdm pyyaml ipykernel \
	nbclient nbformat pytest nbval
EXECUTE ?= off

.PHONY: book test install assets browser sandbox outputs clean

book: $(STAMP) $(ASSETS)
ifeq ($(EXECUTE),off)
	$(BIN)/jupyter-book build . -W --keep-going -n
else
	mkdir -p _build
	sed -e 's/execute_notebooks: "off"/execute_notebooks: "$(EXECUTE)"/' _config.yml > _build/_config.$(EXECUTE).yml
	$(BIN)/jupyter-book build . -W --keep-going -n --config _build/_config.$(EXECUTE).yml
endif
	@echo
	@echo "The book is built. Serve it: $(BIN)/python -m http.server -d _build/html 8000, then open http://localhost:8000"

test: $(STAMP) $(ASSETS) browser sandbox $(COLAB_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/efflab sync-notebooks --check
	$(BIN)/efflab assign --check
	$(BIN)/python -m pytest tests efflab --ignore=tests/colab --ignore=tests/one_thread
	OMP_NUM_THREADS=1 EFFLAB_STRICT_CHECK=1 EFFLAB_STRICT_CLAIMS=1 \
	  $(BIN)/python -m pytest tests/one_thread -p no:cacheprovider
	$(COLAB_VENV)/bin/python -m pip uninstall -q -y efflab 2> /dev/null || true
	EFFLAB_SOURCE="$(CURDIR)" EFFLAB_STRICT_CHECK=1 EFFLAB_STRICT_CLAIMS=1 \
	  $(COLAB_VENV)/bin/python -m pytest chapters labs/masters tests/colab -p no:cacheprovider

$(COLAB_STAMP):
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install -q --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install -q $(COLAB_PACKAGES)
	touch $@

install: $(STAMP) sandbox

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)" -e ".[dev]"
	touch $@

assets: $(ASSETS)

$(ASSETS): Makefile
	rm -rf _vendor
	mkdir -p _vendor/npm _vendor/static/html-manager
	cd _vendor/npm && npm pack --silent $(MATHJAX) $(REQUIREJS) $(HTML_MANAGER) > /dev/null
	# MathJax: only what a page loads (the combined component, its CHTML fonts, the TeX extensions it autoloads),
	# 2 MB of the 24 MB es5 tree; the opt-in accessibility explorer and speech engine of its menu are left out.
	tar -xzf _vendor/npm/mathjax-*.tgz -C _vendor/npm package/es5/tex-mml-chtml.js package/es5/output/chtml/fonts/woff-v2 \
	   package/es5/input/tex/extensions
	mv _vendor/npm/package/es5 _vendor/static/mathjax
	tar -xzf _vendor/npm/requirejs-*.tgz -C _vendor/npm package/require.js
	mv _vendor/npm/package/require.js _vendor/static/require.js
	tar -xzf _vendor/npm/jupyter-widgets-html-manager-*.tgz -C _vendor/npm package/dist
	# the manager and the woff2/woff fonts of its icons (every browser that runs it reads woff2; no eot/svg/ttf)
	mv _vendor/npm/package/dist/embed-amd.js _vendor/npm/package/dist/*.woff* _vendor/static/html-manager/
	rm -rf _vendor/npm/package
	touch $@

# The reader-journey tests drive Debian's Chromium headless; install it when missing (CI runs as root).
browser:
	@command -v chromium > /dev/null || { echo "installing chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; }

# efflab grade runs each submission under bubblewrap (and util-linux's unshare/setpriv/mount when run as root);
# install it when missing and we may (root), else say how.
sandbox:
	@command -v bwrap > /dev/null || { if [ "$$(id -u)" = 0 ]; then echo "installing bubblewrap for efflab grade"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap > /dev/null; \
	  else echo "note: efflab grade needs bubblewrap: sudo apt-get install bubblewrap (or your distribution's)"; fi; }

outputs: $(STAMP)
	for nb in $$(find chapters labs/masters -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null | sort); do \
	  echo "executing $$nb"; $(BIN)/jupyter execute --inplace --timeout=600 "$$nb"; done

clean:
	rm -rf _build _vendor .pytest_cache .ruff_cache $(COLAB_VENV)
