# shellcheck shell=bash
# Shared by the scripts in this folder: values of the stack's resolved compose configuration
# (.env, the shell, the defaults in compose.yaml), read without anything but Docker on the host.
# COMPOSE may carry options: COMPOSE="docker compose -p trial --env-file trial.env".
COMPOSE=${COMPOSE:-docker compose}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

compose_json() { $COMPOSE config --format json; }

# hub_env KEY: a variable of the hub's environment
hub_env() {
    compose_json | awk -v key="\"$1\": " '
        /^    "hub": \{/ { hub = 1 } hub && /^    }/ { hub = 0 }
        hub && index($0, key) { sub(/^[^:]*: "/, ""); sub(/",?$/, ""); print; exit }'
}

# service_image NAME: the image a service runs
service_image() {
    compose_json | awk -v service="    \"$1\": {" '
        $0 == service { inside = 1 } inside && /^    }/ { inside = 0 }
        inside && /^      "image": / { sub(/^[^:]*: "/, ""); sub(/",?$/, ""); print; exit }'
}

# volume_name KEY: the Docker name of a volume of compose.yaml (hub-state -> <project>_hub-state)
volume_name() {
    compose_json | awk -v volume="    \"$1\": {" '
        /^  "volumes": \{/ { volumes = 1 }
        volumes && $0 == volume { inside = 1 }
        inside && /^      "name": / { sub(/^[^:]*: "/, ""); sub(/",?$/, ""); print; exit }'
}

# user_volumes: the per-user volumes DockerSpawner made: homes ({prefix}{escaped user id}) and
# the servers' internal TLS certificates ({prefix}{escaped user id}.certs)
user_volumes() {
    local prefix
    prefix=$(hub_env JUPYTERHUB_VOLUME_PREFIX)
    [ -n "$prefix" ] || die "no JUPYTERHUB_VOLUME_PREFIX in the compose configuration"
    docker volume ls -q --filter "name=$prefix" | grep "^$prefix" || true
}

# home_volumes: the homes only (certificates are made anew at every server start)
home_volumes() {
    user_volumes | grep -v '\.certs$' || true
}

# build_missing: make build, when an image of the stack is not there yet
build_missing() {
    local image missing=""
    for image in $($COMPOSE --profile build config --images); do
        docker image inspect "$image" >/dev/null 2>&1 || missing="$missing $image"
    done
    if [ -n "$missing" ]; then
        echo "building the missing images:$missing"
        scripts/build
    fi
}

# load_env_file FILE: export its KEY=VALUE lines (compose's .env format: comments, blank
# lines, optional quotes) that the environment does not set already, as compose does; the
# values are taken as text, never evaluated. For `docker stack deploy`, which reads no .env.
load_env_file() {
    local line key value
    [ -f "$1" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line#"${line%%[![:space:]]*}"}
        case $line in '' | '#'*) continue ;; esac
        key=${line%%=*}
        value=${line#*=}
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        case $value in \"*\") value=${value:1:-1} ;; \'*\') value=${value:1:-1} ;; esac
        [ -n "${!key+set}" ] || export "$key=$value"
    done <"$1"
}
