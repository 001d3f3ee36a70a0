# shellcheck shell=bash
# Shared by the scripts in this folder: values of the stack's resolved compose configuration
# (.env, the shell, the defaults in compose.yaml), read without anything but Docker on the host.
# COMPOSE may carry options: COMPOSE="docker compose -p trial --env-file trial.env".
COMPOSE=${COMPOSE:-docker compose}
# the images' base (scripts/build); made with debootstrap where no registry has it
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}

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

# missing_images: the images of the stack that are not there yet
missing_images() {
    local image
    for image in $($COMPOSE --profile build config --images); do
        docker image inspect "$image" >/dev/null 2>&1 || echo "$image"
    done
}

# build_missing: make build, when an image of the stack is not there yet
build_missing() {
    local missing
    missing=$(missing_images | tr '\n' ' ')
    if [ -n "$missing" ]; then
        echo "building the missing images: $missing"
        scripts/build
    fi
}

# base_image_present: BASE_IMAGE is here, or a registry has it (pulled now; not with OFFLINE=1)
base_image_present() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
        || { [ "${OFFLINE:-}" != 1 ] && docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; }
}

# port_free ADDRESS PORT SETTING: stops with one line naming the port and the setting that
# moves it when something on this host answers on ADDRESS:PORT (an empty address or 0.0.0.0:
# all of the host's addresses, asked on 127.0.0.1), as Docker would fail to publish it there.
# A port this stack's own containers publish already is no conflict (up again is a no-op).
port_free() {
    local address=${1:-127.0.0.1} port=$2 setting=$3
    [ "$address" != 0.0.0.0 ] || address=127.0.0.1
    (: <"/dev/tcp/$address/$port") 2>/dev/null || return 0
    $COMPOSE ps --format '{{.Ports}}' 2>/dev/null | grep -q ":$port->" && return 0
    die "port $port is in use on this host (set by $setting): stop what uses it, or set $setting to a free port"
}

# published_port SERVICE: "PORT ADDRESS" of the first port the service publishes (no address:
# all of the host's addresses)
published_port() {
    compose_json | awk -v service="    \"$1\": {" '
        $0 == service { inside = 1 } inside && /^    }/ { inside = 0 }
        inside && /^          "host_ip": / { sub(/^[^:]*: "/, ""); sub(/",?$/, ""); ip = $0 }
        inside && /^          "published": / {
            sub(/^[^:]*: "/, ""); sub(/",?$/, ""); print $0, ip; exit }'
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
