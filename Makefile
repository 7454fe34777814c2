# churn-pipeline: the front door. `make` alone lists the targets.
# Every target that needs the environment creates it first, so `make demo` works as the
# first command on a fresh clone.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
CHURN := $(VENV)/bin/churn
CONFIG ?= configs/default.yaml
AS_OF ?=
TRIALS ?= 30
TIMEOUT ?= 600

.PHONY: help setup demo data validate features train tune score report ui test browser postgres lint bench

help: ## List the targets with one line of help each
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock
	@# setuptools says on every editable install that folders named like the packages take
	@# precedence on import: true, harmless here (they are these very packages), so not shown.
	PYTHONWARNINGS="ignore:Editable installation:UserWarning" $(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed ## Create .venv and install the locked dependencies

demo: setup ## Run everything end to end on a generated demo world (generate, train, score)
	$(CHURN) demo --config $(CONFIG)

data: setup ## Generate the demo world into data/demo
	$(CHURN) generate --out data/demo --force

validate: setup ## Check the input data against the data contract
	$(CHURN) validate --config $(CONFIG)

features: setup ## Build the feature frame as of AS_OF=YYYY-MM-DD
	$(CHURN) features --config $(CONFIG) --as-of $(or $(AS_OF),$(error set AS_OF=YYYY-MM-DD))

train: setup ## Train, evaluate and register the churn and CLV models in MLflow
	$(CHURN) train --config $(CONFIG)

tune: setup ## Tune both models with Optuna (TRIALS=30 TIMEOUT=600 seconds per model)
	$(CHURN) tune --config $(CONFIG) --trials $(TRIALS) --timeout $(TIMEOUT)

score: setup ## Write the at-risk list as of AS_OF (default: today)
	$(CHURN) score --config $(CONFIG) $(if $(AS_OF),--as-of $(AS_OF))

report: setup ## Write the retention KPI report (HTML + CSV)
	$(CHURN) report --config $(CONFIG)

ui: setup ## Open the MLflow UI on http://127.0.0.1:5000 over the local store
	@echo "MLflow UI: http://127.0.0.1:5000/#/?workflowType=machine_learning (its model-training view; Ctrl-C stops it)"
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

# Whole test files per worker (--dist loadfile): a module's fixtures (a world validated on
# Spark, a trained demo) are then built once, not once per worker that runs one of its tests.
test: setup browser postgres ## Run the test suite
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

# The KPI report's and summary.html's rendering tests open them in headless Chromium, and the
# at-risk list's spreadsheet tests open the CSV and the workbook in headless LibreOffice Calc
# (Debian's packages; LibreOffice is about 95 MB to download, 300 MB installed). Installed
# when this runs as root with apt-get (CI); anywhere else those tests are skipped.
browser: ## Install Debian's chromium and LibreOffice Calc for the rendering and spreadsheet tests (root only; optional)
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the report rendering test ..."; \
		apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
		apt-get install -y -q chromium >/dev/null 2>&1) || echo "chromium not installed: that test is skipped"; \
	else echo "chromium not installed (needs root): the report rendering test is skipped"; fi
	@if [ -x /usr/bin/soffice ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's LibreOffice Calc (no GUI) for the at-risk list's spreadsheet tests ..."; \
		apt-get install -y -q libreoffice-calc-nogui >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
		apt-get install -y -q libreoffice-calc-nogui >/dev/null 2>&1) || \
		echo "LibreOffice not installed: the spreadsheet tests are skipped"; \
	else echo "LibreOffice not installed (needs root): the spreadsheet tests are skipped"; fi

# The database-source tests (tests/pipeline/engines/test_postgres.py) start a throwaway
# PostgreSQL server of their own on a free local port in a temporary folder: they need the
# server's binaries (initdb, pg_ctl, postgres), which Debian's package puts in
# /usr/lib/postgresql/<version>/bin. Installed when this runs as root with apt-get (CI);
# anywhere else, without them, those tests are skipped.
postgres: ## Install Debian's PostgreSQL server for the database-source tests (root only; optional)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's postgresql for the database-source tests ..."; \
		apt-get install -y -q postgresql >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
		apt-get install -y -q postgresql >/dev/null 2>&1) || \
		echo "PostgreSQL not installed: the database-source tests are skipped"; \
	else echo "PostgreSQL not installed (needs root): the database-source tests are skipped"; fi

lint: setup ## Check style with ruff
	$(VENV)/bin/ruff check .

BENCH_DIR ?= /tmp/churn-bench

bench: setup ## Scale benchmarks, not part of the tests (1M customers, Spark beside DuckDB, a 1M-order import; many hours on 2 cores)
	$(VENV)/bin/python tests/benchmarks/bench_generate.py --customers 100000 --customers 1000000 --out $(BENCH_DIR)
	$(VENV)/bin/python tests/benchmarks/bench_features.py --customers 1000000 --out $(BENCH_DIR)/features --keep
	$(VENV)/bin/python tests/benchmarks/bench_scoring.py --customers 1000000 --out $(BENCH_DIR)/features --keep
	$(VENV)/bin/python tests/benchmarks/bench_growth.py --customers 100000 --customers 300000 --customers 1000000 --out $(BENCH_DIR)/features
	$(VENV)/bin/python tests/benchmarks/bench_validation.py --world $(BENCH_DIR)/features/1000000/world --json $(BENCH_DIR)/features/validation.json
	$(VENV)/bin/python tests/benchmarks/bench_spark.py --customers 100000 --out $(BENCH_DIR)/features
	$(VENV)/bin/python tests/benchmarks/bench_spark.py --customers 1000000 --out $(BENCH_DIR)/features --steps duckdb_one,spark_one,duckdb_score,spark_score
	$(VENV)/bin/python tests/benchmarks/spark_online_retail.py --out $(BENCH_DIR)/online_retail_spark/$$(date +%Y%m%d-%H%M%S)
	$(VENV)/bin/python tests/benchmarks/bench_training.py --customers 100000 --customers 1000000 --out $(BENCH_DIR)/features
	$(VENV)/bin/python tests/benchmarks/bench_import.py --orders 1000000 --out $(BENCH_DIR)/import
