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

lint: ## ruff and hadolint
	ruff check . && ruff format --check . && hadolint images/*/Dockerfile openbis_double/Dockerfile

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
# COMPOSE can carry options, e.g. `make up COMPOSE="docker compose -p trial --env-file trial.env"`.
COMPOSE ?= docker compose
BACKUPS ?= backups
# a value of the resolved compose configuration (.env, the shell, defaults in compose.yaml)
compose_get = $$($(COMPOSE) config --format json | $(PYTHON) -c \
  'import json, sys; print(json.load(sys.stdin)$(1) or "")')
hub_env = $(call compose_get,["services"]["hub"]["environment"]["$(1)"])
hub_image = $(call compose_get,["services"]["hub"]["image"])
state_volume = $(call compose_get,["volumes"]["hub-state"]["name"])
# the per-user volumes DockerSpawner made, and the running user servers (on the stack's
# network, named {prefix}-...)
user_volumes = $$(docker volume ls -q --filter name=$(call hub_env,JUPYTERHUB_VOLUME_PREFIX) \
  | grep "^$(call hub_env,JUPYTERHUB_VOLUME_PREFIX)")
user_containers = $$(docker ps -q --filter network=$(call hub_env,JUPYTERHUB_NETWORK) \
  --filter name=^$(call hub_env,JUPYTERHUB_CONTAINER_PREFIX)-)

.PHONY: up down logs build upgrade backup restore
up: ## build what is missing, start the stack, print the ELN profile values
	@set -euo pipefail; \
	  images=$$($(COMPOSE) --profile build config --images); missing=""; \
	  for image in $$images; do docker image inspect "$$image" >/dev/null 2>&1 || missing="$$missing $$image"; done; \
	  if [ -n "$$missing" ]; then echo "building the missing images:$$missing"; $(MAKE) --no-print-directory build; fi
	$(COMPOSE) up -d --wait --wait-timeout 180
	@url=$(call hub_env,JUPYTERHUB_PUBLIC_URL); url=$${url%/}; \
	  echo; echo "JupyterHub runs at $$url/"; \
	  echo "Set in the openBIS ELN-LIMS profile:"; \
	  echo "  jupyterEndpoint                  = $$url/"; \
	  echo "  jupyterIntegrationServerEndpoint = $$url/hub/openbis-notebook"

down: ## stop the hub and every user server; user files and hub state stay in their volumes
	@containers=$(user_containers); \
	  if [ -n "$$containers" ]; then echo "stopping user servers"; docker stop $$containers >/dev/null; fi
	$(COMPOSE) down

logs: ## follow the hub's log
	$(COMPOSE) logs -f --tail 200 hub

build: base-image wheels ## (re)build the images: hub, single-user (and the double when enabled)
	$(COMPOSE) --profile build build

# The new hub takes over the running user servers; each server runs the new single-user
# image from its next start (idle culling, or the user's File > Hub Control Panel).
upgrade: build ## rebuild the images from this checkout and restart the hub; user data stays
	$(COMPOSE) up -d --wait --wait-timeout 180

# Archives are tar files readable by the owner only (they hold the crypt key and tokens).
# Files change while users work: for a consistent copy run it after `make down`.
backup: ## archive hub state and every user volume into backups/<date>/
	@set -euo pipefail; umask 077; \
	  dir=$(BACKUPS)/$$(date +%Y%m%d-%H%M%S); mkdir -p "$$dir"; \
	  image=$(hub_image); \
	  archive() { docker run --rm --entrypoint bash -v "$$1:/volume:ro" -v "$$(realpath "$$dir"):/backup" \
	    "$$image" -c 'umask 077 && tar -C /volume --numeric-owner -czf "/backup/$$1.tar.gz" .' _ "$$2"; }; \
	  archive $(state_volume) hub-state; \
	  for volume in $(user_volumes); do archive "$$volume" "$$volume"; done; \
	  ls -l "$$dir"; echo "backup written to $$dir"

# Restores only into volumes that are missing or empty: nothing is overwritten. To restore
# one user, `docker volume rm jupyterhub-user-<name>` (after `make down`) and run this again.
restore: ## BACKUP=backups/<date>: restore its volumes that are missing or empty (after make down)
	@set -euo pipefail; \
	  [ -n "$(BACKUP)" ] && [ -d "$(BACKUP)" ] || { echo "usage: make restore BACKUP=$(BACKUPS)/<date>" >&2; exit 1; }; \
	  [ -z "$$($(COMPOSE) ps -q hub)" ] || { echo "the hub is running: make down first" >&2; exit 1; }; \
	  image=$(hub_image); state=$(state_volume); \
	  for archive in "$(BACKUP)"/*.tar.gz; do \
	    name=$$(basename "$$archive" .tar.gz); volume=$$name; \
	    [ "$$name" = hub-state ] && volume=$$state; \
	    if docker volume inspect "$$volume" >/dev/null 2>&1 && [ -n "$$(docker run --rm --entrypoint find \
	        -v "$$volume:/volume:ro" "$$image" /volume -mindepth 1 -maxdepth 1 -print -quit)" ]; then \
	      echo "skipped $$volume: it holds files (remove the volume to restore it)"; continue; fi; \
	    docker volume create "$$volume" >/dev/null; \
	    docker run --rm --entrypoint tar -v "$$volume:/volume" -v "$$(realpath "$(BACKUP)"):/backup:ro" \
	      "$$image" -C /volume --numeric-owner -xzf "/backup/$$name.tar.gz"; \
	    echo "restored $$volume"; \
	  done
