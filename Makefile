# The two commands a newcomer needs (README: Quick start). Both do the set-up first.
CONFIG ?= configs/default.yaml
PYTEST = .venv/bin/python -m pytest

.PHONY: setup run test test-fast bench

setup:
	./scripts/setup.sh

run: setup
	./harness.py run -c $(CONFIG)

test: setup
	$(PYTEST) -v tests

test-fast: setup
	$(PYTEST) -q -m "not e2e" tests
