# Admin and developer entry points. `make help` lists them.
SHELL := /bin/bash
export DOCKER_BUILDKIT := 0
export COMPOSE_DOCKER_CLI_BUILD := 0
PYTHON ?= python3
WHEELS := images/wheels
REQUIREMENTS := $(wildcard images/*/requirements.txt)

.PHONY: help test base-image wheels lint
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test: ## run every test (does its own set-up: packages, venv, dockerd, base image)
	tests/run.sh

lint: ## ruff and hadolint
	ruff check . && ruff format --check . && hadolint images/*/Dockerfile

# A local debian:bookworm-slim built with debootstrap, for machines that reach no image
# registry (Debian's package mirror is enough). Re-created only when missing.
base-image: ## build debian:bookworm-slim locally when it is missing
	@docker image inspect debian:bookworm-slim >/dev/null 2>&1 || { \
	  set -e; dir=$$(mktemp -d); \
	  echo "debootstrap bookworm into $$dir"; \
	  debootstrap --variant=minbase bookworm "$$dir" http://deb.debian.org/debian >/dev/null; \
	  rm -rf "$$dir"/var/lib/apt/lists/* "$$dir"/var/cache/apt/archives/*.deb; \
	  tar -C "$$dir" -c . | docker import -c 'CMD ["bash"]' - debian:bookworm-slim; \
	  rm -rf "$$dir"; }

# Image builds take Python wheels from images/wheels when it holds any (sites without
# internet, or where HTTPS from containers is blocked), else from PyPI.
wheels: $(WHEELS)/.stamp ## download the wheels the images install into images/wheels
$(WHEELS)/.stamp: $(REQUIREMENTS) pyproject.toml
	$(PYTHON) -m pip wheel -q -w $(WHEELS) setuptools wheel $(foreach r,$(REQUIREMENTS),-r $(r))
	touch $@
