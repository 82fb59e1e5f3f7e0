# The two set-up commands: `make run` and `make test`. Everything else is a helper of them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= ap-east-1

.PHONY: run test install lint unit template bench package clean console browser

$(STAMP): requirements.txt requirements-dev.txt requirements-digest.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip>=23,<26.3'  # chalice 1.34 requires pip<26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## make run: the local stack (embedded DynamoDB, the app on :8000, timers, state kept in .siyu/)
run: $(STAMP)
	$(BIN)/python -m chalicelib.local.stack

## make test: lint, unit + functional + end-to-end tests, and the deployment template check
test: lint browser unit template

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check chalicelib tests bench app.py

unit: $(STAMP)
	$(BIN)/python -m pytest

template: $(STAMP)
	rm -rf build/package && mkdir -p build
	rm -rf chalicelib/bundled_rules && cp -r rules chalicelib/bundled_rules
	$(BIN)/chalice package --stage dev --merge-template infra/resources.json build/package; \
	  rc=$$?; rm -rf chalicelib/bundled_rules; test $$rc -eq 0
	$(BIN)/cfn-lint build/package/sam.json

## make console: rebuild the console's page (console/src → chalicelib/console/static, committed)
console:
	cd console && npm ci --no-audit --no-fund && node build.mjs

## make browser: Debian's chromium + chromium-driver (and a CJK font for the screenshots), as root
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list :lang=zh | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null) \
	  || echo "*** apt-get could not install chromium: the console's browser tests will skip"; \
	else echo "*** not root: the console's browser tests will skip (apt-get install -y chromium chromium-driver)"; fi

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/send_rate.py
	$(BIN)/python bench/recall_sweep.py
	$(BIN)/python bench/digest_reads.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/simulate.py

clean:
	rm -rf $(VENV) build .siyu .pytest_cache .ruff_cache
