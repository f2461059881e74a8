# Everyday commands. The README's two commands stay the set-up; these assume .venv exists.
PY ?= .venv/bin/python

.PHONY: run test test-fast lint format bench

run:
	$(PY) -m streamlit run app.py

test:
	$(PY) -m pytest

test-fast:
	$(PY) -m pytest -m "not browser and not slow" -q

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	.venv/bin/lint-imports

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench:
	$(PY) bench/fetch.py
	$(PY) bench/metrics.py
	$(PY) bench/store.py
	$(PY) bench/page.py
