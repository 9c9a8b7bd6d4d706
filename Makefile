# Two commands matter on a fresh machine: `make demo` and `make test`. Everything else is a step of them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AKKO_HOME ?= $(CURDIR)/.akko
export AKKO_HOME

.PHONY: setup demo test screenshots ui bench mlflow-ui aden superset airflow spark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

dbt/target/manifest.json: $(VENV)/.installed $(wildcard dbt/models/*/*) dbt/dbt_project.yml
	cd dbt && ../$(BIN)/dbt parse --profiles-dir . --quiet

setup: $(VENV)/.installed dbt/target/manifest.json

superset: setup
	bash scripts/setup_superset.sh

airflow: setup
	bash scripts/setup_airflow.sh

spark: setup
	bash scripts/setup_spark.sh

demo: setup superset
	$(BIN)/akko services up
	$(BIN)/akko superset up
	$(BIN)/akko demo

test: setup superset airflow spark
	$(BIN)/python -m pytest -q

# The browser tests save their screenshots in pytest's tmp_path; this refreshes the committed
# copies in docs/img/ (README images) instead.
SCREENSHOT_TESTS := tests/test_aden_app.py tests/test_bi_superset.py tests/test_orchestration_e2e.py

screenshots: setup superset airflow spark
	AKKO_WRITE_DOCS_SCREENSHOTS=1 $(BIN)/python -m pytest -q $(SCREENSHOT_TESTS)

ui: setup
	DAGSTER_HOME=$$($(BIN)/python -m akko_assets.orchestration) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: setup
	$(BIN)/python bench/bench_pipeline.py --rows $${AKKO_ROWS:-100000} --json bench/latest.json
	$(BIN)/python bench/bench_governance.py
	$(BIN)/python bench/bench_aden.py
	$(BIN)/python bench/bench_refresh.py --rows $${AKKO_ROWS:-100000}
	if [ -d .spark-jars ]; then $(BIN)/python bench/bench_spark.py; fi

bench-scale: setup
	$(BIN)/python bench/bench_scale.py --json bench/scale.json

aden: setup
	$(BIN)/streamlit run akko_assets/aden/app.py --server.address 127.0.0.1 --server.port 8501 --server.headless true \
		--browser.gatherUsageStats false --client.toolbarMode minimal

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(AKKO_HOME)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf $(AKKO_HOME) dbt/target dbt/logs
