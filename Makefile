# Admin and developer entry points. `make help` lists them.
SHELL := /bin/bash
export DOCKER_BUILDKIT := 0
export COMPOSE_DOCKER_CLI_BUILD := 0
# Debian bookworm's own Python (3.11.2), as in the images: pip then picks versions that
# install there (a newer host Python would accept wheels needing e.g. >=3.11.5).
PYTHON ?= /usr/bin/python3
WHEELS := images/wheels
REQUIREMENTS := $(wildcard images/*/requirements.txt)

.PHONY: help test base-image wheels lint
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test: ## run every test (does its own set-up: packages, venv, dockerd, base image)
	tests/run.sh

lint: ## ruff, hadolint, shellcheck
	ruff check . && ruff format --check . && hadolint images/*/Dockerfile openbis_double/Dockerfile \
	  && shellcheck -x scripts/* tests/run.sh images/*/*.sh images/singleuser/before-notebook.d/*.sh

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

# --- running the stack (compose.yaml; settings in .env, see .env.example and README.md) -----
# Each target is one script in scripts/ (`scripts/X --help`). COMPOSE can carry options, e.g.
# `make up COMPOSE="docker compose -p trial --env-file trial.env"`.
COMPOSE ?= docker compose
export COMPOSE

.PHONY: up down logs build upgrade backup restore
up: ## build what is missing, start the stack, print the ELN profile values
	scripts/up

down: ## stop the hub and every user server; user files and hub state stay in their volumes
	scripts/down

logs: ## follow the hub's log
	$(COMPOSE) logs -f --tail 200 hub

build: base-image wheels ## (re)build the images: hub, single-user (and the double when enabled)
	$(COMPOSE) --profile build build

# The new hub takes over the running user servers; each server runs the new single-user
# image from its next start (idle culling, or the user's File > Hub Control Panel).
upgrade: build ## rebuild the images from this checkout and restart the hub; user data stays
	$(COMPOSE) up -d --wait --wait-timeout 180

backup: ## archive hub state and every user volume into backups/<date>/ (or BACKUP=dir)
	scripts/backup $(BACKUP)

restore: ## BACKUP=backups/<date>: restore its volumes that are missing or empty (after make down)
	scripts/restore $(BACKUP)
