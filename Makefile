# Two entry points for a fresh machine: `make demo` and `make test`.
# Both build their own .venv from pyproject.toml; nothing needs installing by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench bench-smoke clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job on its embedded default: send the demo campaign to the local outbox
# (no credentials, no server), then print its ledger status.
demo: $(STAMP)
	$(BIN)/equip-mailer send campaigns/2019-04-equip-training.yaml --allow-past --backend outbox --yes
	$(BIN)/equip-mailer status campaigns/2019-04-equip-training.yaml

# Everything the tests need (Python deps, the npm MJML validator, Chromium) then the whole suite.
# With ../shared/sendgrid present, the suite runs inside with_prism.sh so the contract test
# can check our requests against SendGrid's official Mail Send contract.
PRISM := $(wildcard ../shared/sendgrid/with_prism.sh)
test: $(STAMP)
	bash tests/setup-system.sh
	$(MAKE) --no-print-directory lint
	$(if $(PRISM),bash $(PRISM)) $(BIN)/python -m pytest $(PYTEST_ARGS)

# The habits CI keeps: ruff's lint rules and formatting, and mypy over the package
# (settings in pyproject.toml). `make test` runs this first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-smoke: $(STAMP)
	$(BIN)/python benchmarks/run.py --smoke

clean:
	rm -rf $(VENV) outbox preview equip-mailer.db
