# Airlock: two commands do all the set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: help demo test unit lint typecheck template-check build-check bench up clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(STAMP): pyproject.toml scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@touch $@

demo: $(STAMP)  ## run the whole flow on the embedded local AWS (sftp upload -> validated Parquet)
	$(BIN)/airlock demo

up: $(STAMP)  ## run the local stack in the foreground (AWS :4566, SFTP :2222)
	$(BIN)/airlock local up

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

typecheck: $(STAMP)  ## mypy
	$(BIN)/mypy

template-check: $(STAMP)  ## sam validate --lint, cfn-lint, checkov, ASL lint
	scripts/check_template.sh

build-check: $(STAMP)  ## sam build, then each artifact: < 250 MB, imports alone, no pyarrow outside ingest
	scripts/check_build.sh

unit: $(STAMP)  ## unit tests only (no local stack)
	$(BIN)/pytest -q -m "not integration and not e2e" -n $(PYTEST_WORKERS)

test: $(STAMP) lint typecheck template-check  ## the full suite: lint, types, template checks, unit, integration, e2e
	@set +e; $(BIN)/pytest -q -n $(PYTEST_WORKERS) --durations=10; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a broken suite, not a pass" >&2; fi; \
	exit $$rc

bench: $(STAMP)  ## benchmarks and the full proof runs (writes docs/benchmarks.md, docs/assurance.md)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_validate.py --rows 1000000 --big --write-docs
	$(BIN)/python benchmarks/bench_identity.py --write-docs
	$(BIN)/python benchmarks/bench_burst.py
	AIRLOCK_FUZZ_EXAMPLES=1500 $(BIN)/pytest -q -p no:xdist tests/proofs/test_fuzz.py  # the assurance run's fuzzing

clean:  ## remove the virtualenv, tool envs and local state
	rm -rf $(VENV) .tools .airlock .aws-sam .pytest_cache .mypy_cache .ruff_cache
