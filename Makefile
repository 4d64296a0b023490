# honeydue.infra — the interface. `make test` is what CI runs (.ci/run); `make lab` is the local lab.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON  ?=
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.requirements.sha256
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PY_COLORS := 0
export ANSIBLE_FORCE_COLOR := 0

.PHONY: help test-clean lane-integration lane-checks integration-split venv docker registry-tools image lint sanity unit integration molecule lab-test test lab lab-down bench build clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The virtualenv is rebuilt only when requirements-dev.txt or the interpreter changes (the stamp
# holds both). The interpreter is $(PYTHON) if given, else the newest Python >= 3.12 found
# (scripts/pick-python.sh: PATH, then pyenv); ansible 14 needs 3.12 or newer.
venv: ## .venv with the pinned Python toolchain (reused when requirements-dev.txt is unchanged)
	@py="$(PYTHON)"; [ -n "$$py" ] || py=$$(scripts/pick-python.sh); \
	pyver=$$("$$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'); \
	"$$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
	  { echo "venv: $$py is Python $$pyver; ansible 14 needs Python >= 3.12" >&2; exit 1; }; \
	want="$$(sha256sum requirements-dev.txt | cut -d' ' -f1) python-$$pyver"; \
	if [ -x $(BIN)/python ] && [ "$$(cat $(STAMP) 2>/dev/null)" = "$$want" ]; then \
	  echo "venv: reusing $(VENV) (Python $$pyver, requirements unchanged)"; \
	else \
	  echo "venv: installing requirements-dev.txt into $(VENV) with $$py (Python $$pyver)"; \
	  "$$py" -m venv --clear $(VENV); \
	  $(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip; \
	  $(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt; \
	  echo "$$want" > $(STAMP); \
	fi

docker: ## make `docker info` work (use a running engine, or install docker.io and start dockerd)
	@scripts/ensure-docker.sh

registry-tools: ## the lab's tools: Debian's docker-registry (distribution 2.8), skopeo and redis-server
	@scripts/ensure-registry-tools.sh

image: docker ## the lab node image (Debian 13, debootstrap + docker import), tagged by recipe hash
	@lab/image/build.sh > /dev/null

lint: venv ## yamllint, ruff (Python) and ansible-lint (production profile)
	$(BIN)/yamllint --strict .
	$(BIN)/ruff check .
	$(BIN)/ansible-lint --profile production

JUNIT := .cache/junit

# ansible-test runs on a copy of what the collection ships, under .cache/sanity/ansible_collections/
# honeydue/infra (it refuses the collections/ link); the sanity virtualenvs are reused between runs.
sanity: venv ## ansible-test sanity on Python 3.13 (tests/sanity/ignore-2.21.txt lists the exceptions)
	scripts/ansible-sanity.sh --junit $(JUNIT)/sanity.xml

unit: venv ## unit tests (filters, module_utils, stand-in helpers)
	$(BIN)/pytest tests/unit --junitxml=$(JUNIT)/unit.xml

integration: venv registry-tools image ## integration tests: real ansible-playbook runs against the local stand-ins
	$(BIN)/pytest tests/integration $(INTEGRATION_ARGS) --junitxml=$(JUNIT)/integration.xml

SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

molecule: $(addprefix molecule-,$(SCENARIOS)) ## every molecule scenario, one at a time (molecule-<name>: one)

molecule-%: venv image registry-tools
	@echo "== molecule test -s $*"
	$(BIN)/molecule test -s $*

# `molecule test` in two steps (make test's lanes): destroy and create (molecule's create_sequence
# runs prepare.yml too); then verify and destroy (also when verify fails).
prepared-molecule-%: venv image registry-tools
	@echo "== molecule destroy, create (and prepare) -s $*"
	@$(BIN)/molecule destroy -s $* && $(BIN)/molecule create -s $* \
	  || { rc=$$?; $(BIN)/molecule destroy -s $*; exit $$rc; }

verify-molecule-%: venv
	@echo "== molecule verify, destroy -s $*"
	@$(BIN)/molecule verify -s $* || { rc=$$?; $(BIN)/molecule destroy -s $*; exit $$rc; }
	@$(BIN)/molecule destroy -s $*

# `make lab` as an operator meets it (tests/lab): from nothing, then again at -vvv (0 changed, no
# secret shown), no secret in a wide file or a command line, a node lost and replaced. It removes
# any lab first and at the end (HONEYDUE_KEEP_LAB=1 keeps it).
lab-test: venv image registry-tools ## make lab end to end on a clean lab (about 12 minutes)
	$(BIN)/pytest tests/lab -x -s -p no:cacheprovider --junitxml=$(JUNIT)/lab.xml

test-clean:
	@rm -rf $(JUNIT)

# `make test` on a 2-core machine: the integration tests mostly wait (about one core idle), so a second
# lane runs beside them (nice'd; every line is prefixed with its lane): lint, sanity, unit, the light
# molecule scenarios, the creation and preparation (hardening) of the heavy scenarios' containers, and
# one integration test file (Cloudflare stand-in only, about 2 minutes) so that both lanes end
# together. Then the tests that run three K3s servers (k3s-ha's, then the lab's) run alone. Within a lane
# targets run one at a time (-j1: scenarios share container names).
LIGHT_SCENARIOS := default hardening k3s-standin
HEAVY_SCENARIOS := $(filter-out $(LIGHT_SCENARIOS),$(SCENARIOS))
INTEGRATION_SPLIT := tests/integration/test_cf_origin_tls_role.py

lane-integration:
	@$(MAKE) --no-print-directory -j1 integration INTEGRATION_ARGS="$(addprefix --ignore=,$(INTEGRATION_SPLIT))" 2>&1 \
	  | sed -u 's/^/[integration] /'

lane-checks:
	@nice -n 10 $(MAKE) --no-print-directory -j1 lint sanity unit $(addprefix molecule-,$(LIGHT_SCENARIOS)) \
	  $(addprefix prepared-molecule-,$(HEAVY_SCENARIOS)) integration-split 2>&1 | sed -u 's/^/[checks] /'

integration-split: venv
	$(BIN)/pytest $(INTEGRATION_SPLIT) --junitxml=$(JUNIT)/integration-split.xml

test: test-clean venv image registry-tools ## everything CI runs
	@$(MAKE) --no-print-directory -j2 lane-integration lane-checks
	@$(MAKE) --no-print-directory -j1 $(addprefix verify-molecule-,$(HEAVY_SCENARIOS)) lab-test
	@$(BIN)/python scripts/test-summary.py $(JUNIT)/sanity.xml $(JUNIT)/unit.xml $(JUNIT)/integration.xml \
	  $(JUNIT)/integration-split.xml $(JUNIT)/lab.xml \
	  $$(ls molecule/*/molecule.yml | sed -E 's#molecule/([^/]+)/molecule.yml#$(JUNIT)/molecule-\1.xml#')

# `make lab`: the lab world (lab/world.py: the Hetzner and Cloudflare stand-ins, the registry, the K3s
# release mirror, the edge) and then the real site.yml against it; LAB_ARGS adds ansible-playbook
# arguments (e.g. LAB_ARGS=-vvv). A second `make lab` reuses the world and changes nothing.
LAB_ARGS ?=
lab: venv image registry-tools ## the local lab: site.yml end to end against the stand-ins, then a request through the edge
	@$(BIN)/python -m lab.world up
	@eval "$$($(BIN)/python -m lab.world env)"; \
	  echo "lab: ansible-playbook -i inventories/lab/hcloud.yml site.yml -e sha=$$LAB_SHA $(LAB_ARGS)"; \
	  $(BIN)/ansible-playbook -i inventories/lab/hcloud.yml site.yml -e @"$$LAB_DIR/secrets.yml" -e sha=$$LAB_SHA $(LAB_ARGS)
	@$(BIN)/python -m lab.world check

lab-down: venv ## remove the lab: the world's process, the node containers, the edge, the networks and .lab/
	@$(BIN)/python -m lab.world down

bench: venv ## every benchmark under benchmarks/ (prints BENCH lines with ratios to their anchors)
	@set -e; found=0; for b in benchmarks/bench_*.py; do \
	  [ -e "$$b" ] || continue; found=1; echo "== $$b"; $(BIN)/python "$$b"; \
	done; [ $$found = 1 ] || echo "bench: no benchmarks yet"

build: venv ## the Galaxy tarball (without tests, lab and tooling)
	$(BIN)/ansible-galaxy collection build --force --output-path .cache/dist

clean: lab-down ## remove the lab, caches and the virtualenv
	rm -rf $(VENV) .cache .pytest_cache .hypothesis
