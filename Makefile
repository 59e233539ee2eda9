# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DEMO_START := 2018-01-02
DEMO_END := 2023-10-27
export DAGSTER_HOME

.PHONY: demo test dev venv clean browser dashboard

$(BIN)/.installed: setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m tracking_pipeline backfill --start $(DEMO_START) --end $(DEMO_END)

# Debian's Chromium renders the HTML dashboard in the browser tests.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "warning: could not install chromium (not root?); the dashboard browser test will skip (fail under CI)"

test: venv browser
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

dev: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev

# The Performance Tracker app at http://localhost:8501 on the configured warehouse (TRACKING_WAREHOUSE, as the pipeline).
dashboard: venv
	$(BIN)/python -m tracking_pipeline.app

clean:
	rm -rf data .dagster_home
