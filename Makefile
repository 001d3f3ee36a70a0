# Admin and developer entry points, each a script in scripts/ (`make help` lists them).
SHELL := /bin/bash

.PHONY: help test lint
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test: ## run every test (does its own set-up: packages, venv, dockerd, images)
	tests/run.sh

lint: ## ruff, hadolint, shellcheck
	ruff check . && ruff format --check . && hadolint images/*/Dockerfile openbis_double/Dockerfile \
	  && shellcheck -x scripts/* tests/run.sh images/*/*.sh images/singleuser/before-notebook.d/*.sh

# --- running the stack (compose.yaml; settings in .env, see .env.example, docs/admin-guide.md) -
# Each target is one script in scripts/ (`scripts/X --help`). COMPOSE can carry options, e.g.
# `make up COMPOSE="docker compose -p trial --env-file trial.env"`.
COMPOSE ?= docker compose
export COMPOSE

.PHONY: trial trial-down up down logs build upgrade backup restore
trial: ## try it all on this machine, without an openBIS (prints one address)
	scripts/trial

trial-down: ## remove the trial and everything it made
	scripts/trial-down

up: ## build what is missing, start the stack, print the ELN profile values
	scripts/up

down: ## stop the hub and every user server; user files and hub state stay in their volumes
	scripts/down

logs: ## follow the hub's log
	$(COMPOSE) logs -f --tail 200 hub

build: ## (re)build the images: hub, single-user (and the double when enabled); OFFLINE=1
	scripts/build

# The new hub takes over the running user servers; each server runs the new single-user
# image from its next start (idle culling, or the user's File > Hub Control Panel).
upgrade: build ## rebuild the images from this checkout and restart the hub; user data stays
	$(COMPOSE) up -d --wait --wait-timeout 180

backup: ## archive hub state and every user volume into backups/<date>/ (or BACKUP=dir)
	scripts/backup $(BACKUP)

restore: ## BACKUP=backups/<date>: restore its volumes that are missing or empty (after make down)
	scripts/restore $(BACKUP)

# --- Docker Swarm (deploy/swarm/stack.yaml; docs/scale-out.md) -----------------------------------
.PHONY: swarm-up swarm-down
swarm-up: ## on a swarm manager: secrets, docker stack deploy, print the ELN profile values
	scripts/swarm-up

swarm-down: ## remove the swarm stack and every user server; volumes and secrets stay
	scripts/swarm-down
