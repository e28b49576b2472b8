# Two commands: `make run` (the whole service, embedded default) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m licence_service.launcher

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Benchmarks (bench/README.md): the API's submit against a bare echo app, then BENCH_COUNT applications
# through the whole pipeline. Ends with the two summary lines a script reads (a failed run has none, and fails).
BENCH_COUNT ?= 10000
bench: $(STAMP)
	@mkdir -p var
	$(VENV)/bin/python -u bench/bench_submit.py 2>&1 | tee var/bench-submit.out
	$(VENV)/bin/python -u bench/bench_pipeline.py --count $(BENCH_COUNT) 2>&1 | tee var/bench-pipeline.out
	@grep -h '^submit/echo ratio: ' var/bench-submit.out
	@grep -h '^pipeline: .* applications/s end to end$$' var/bench-pipeline.out

clean:
	rm -rf var .pytest_cache
