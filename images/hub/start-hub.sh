#!/bin/bash
# Start the hub. On first start, make and keep in the state volume what must survive
# restarts and upgrades: JUPYTERHUB_CRYPT_KEY (encrypts the openBIS tokens in auth_state)
# and, when no certificate is given, a self-signed TLS certificate. JupyterHub itself
# keeps its cookie secret and sqlite database there (hub/jupyterhub_config.py).
# Started as root, it prepares files, then runs JupyterHub as the user `jupyterhub` (with the
# Docker socket's group when a socket is mounted; compose.yaml gives it the Docker API filter).
set -euo pipefail
umask 077
state=${JUPYTERHUB_STATE_DIR:-/srv/jupyterhub}
export JUPYTERHUB_STATE_DIR=$state
log() { echo "start-hub: $*" >&2; }

as_root=""
if [ "$(id -u)" = 0 ]; then
    as_root=1
    chown jupyterhub:jupyterhub "$state"
fi
# files this script makes in the state volume belong to the hub user
run_as_hub() {
    if [ -n "$as_root" ]; then setpriv --reuid jupyterhub --regid jupyterhub --clear-groups "$@"
    else "$@"; fi
}

# --- JUPYTERHUB_CRYPT_KEY: from the environment or a secret file (JUPYTERHUB_CRYPT_KEY_FILE,
# Docker Swarm; hub/jupyterhub_config.py reads it), else made once and kept (0600) ---
if [ -n "${JUPYTERHUB_CRYPT_KEY_FILE:-}" ]; then
    run_as_hub test -r "$JUPYTERHUB_CRYPT_KEY_FILE" \
        || { log "JUPYTERHUB_CRYPT_KEY_FILE=$JUPYTERHUB_CRYPT_KEY_FILE is not readable by the hub user"; exit 1; }
elif [ -z "${JUPYTERHUB_CRYPT_KEY:-}" ]; then
    key_file=$state/jupyterhub_crypt_key
    if [ ! -s "$key_file" ]; then
        log "first start: generating $key_file"
        # write then rename, so a crash never leaves a half-written key behind
        # shellcheck disable=SC2016 # $1 expands in the inner bash
        run_as_hub bash -c 'umask 077 && openssl rand -hex 32 >"$1.new" && mv "$1.new" "$1"' _ "$key_file"
    fi
    JUPYTERHUB_CRYPT_KEY=$(cat "$key_file")
    export JUPYTERHUB_CRYPT_KEY
fi

# --- the openBIS CA: the hub user must read it; a root-only file gets a private copy ---
# On Swarm, services start in any order (a stack ignores depends_on): give a CA file that
# another service writes (the openBIS double's) a minute to appear.
if [ -n "${OPENBIS_CA_FILE:-}" ] && [ ! -e "$OPENBIS_CA_FILE" ]; then
    log "waiting up to 60 s for OPENBIS_CA_FILE=$OPENBIS_CA_FILE"
    for _ in $(seq 1 120); do [ -e "$OPENBIS_CA_FILE" ] && break; sleep 0.5; done
fi
if [ -n "${OPENBIS_CA_FILE:-}" ] && [ -n "$as_root" ] && ! run_as_hub test -r "$OPENBIS_CA_FILE"; then
    [ -r "$OPENBIS_CA_FILE" ] || { log "OPENBIS_CA_FILE=$OPENBIS_CA_FILE is not a readable file"; exit 1; }
    install -d -o jupyterhub -g jupyterhub -m 0700 /run/jupyterhub
    install -o jupyterhub -g jupyterhub -m 0600 "$OPENBIS_CA_FILE" /run/jupyterhub/openbis-ca.pem
    export OPENBIS_CA_FILE=/run/jupyterhub/openbis-ca.pem
fi

# --- TLS: the given certificate, else a self-signed one for the public host name ---
if [ -n "${JUPYTERHUB_SSL_CERT:-}" ]; then
    if [ ! -r "$JUPYTERHUB_SSL_CERT" ] || [ ! -r "${JUPYTERHUB_SSL_KEY:-}" ]; then
        log "JUPYTERHUB_SSL_CERT=$JUPYTERHUB_SSL_CERT or JUPYTERHUB_SSL_KEY=${JUPYTERHUB_SSL_KEY:-} is not a readable file (see docs/admin-guide.md, TLS)"
        exit 1
    fi
    if [ -n "$as_root" ]; then
        # host files are often root-only: give the hub user private copies outside the volume
        install -d -o jupyterhub -g jupyterhub -m 0700 /run/jupyterhub
        install -o jupyterhub -g jupyterhub -m 0600 "$JUPYTERHUB_SSL_CERT" /run/jupyterhub/ssl.crt
        install -o jupyterhub -g jupyterhub -m 0600 "$JUPYTERHUB_SSL_KEY" /run/jupyterhub/ssl.key
        export JUPYTERHUB_SSL_CERT=/run/jupyterhub/ssl.crt JUPYTERHUB_SSL_KEY=/run/jupyterhub/ssl.key
    fi
elif [[ ${JUPYTERHUB_PUBLIC_URL:-} == http://* ]]; then
    # make trial: the hub and the ELN stand-in on this host only, no certificate to accept
    log "JUPYTERHUB_PUBLIC_URL is http://: serving without TLS (trials on this host only)"
else
    public_url=${JUPYTERHUB_PUBLIC_URL:-https://localhost}
    host=${public_url#*://}
    host=${host%%/*}
    host=${host%:*}
    tls_dir=$state/tls
    # one certificate per host name: changing JUPYTERHUB_PUBLIC_URL makes a matching one
    cert=$tls_dir/self-signed-$host.crt
    key=$tls_dir/self-signed-$host.key
    if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
        log "no JUPYTERHUB_SSL_CERT given: making a self-signed certificate for $host (browsers will warn)"
        if [[ $host =~ ^[0-9.]+$ ]]; then san="IP:$host"; else san="DNS:$host"; fi
        run_as_hub mkdir -p "$tls_dir"
        run_as_hub openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -days 825 -subj "/CN=$host" -keyout "$key" -out "$cert" \
            -addext "subjectAltName=$san,DNS:localhost,IP:127.0.0.1" 2>/dev/null
    fi
    export JUPYTERHUB_SSL_CERT=$cert JUPYTERHUB_SSL_KEY=$key
fi

cd "$state"
if [ -z "$as_root" ]; then
    exec jupyterhub -f /etc/jupyterhub/jupyterhub_config.py "$@"
fi
# compose.yaml gives the hub the Docker API filter (DOCKER_HOST=tcp://docker-proxy:2375); a hub
# run on its own with the engine's socket mounted joins the socket's group
docker_host=${DOCKER_HOST:-unix:///var/run/docker.sock}
groups=jupyterhub
if [[ $docker_host == unix://* ]]; then
    socket=${docker_host#unix://}
    if [ -S "$socket" ]; then
        groups=$groups,$(stat -c %g "$socket")
    else
        log "no Docker socket at $socket: user servers cannot be started (see compose.yaml)"
    fi
fi
exec setpriv --reuid jupyterhub --regid jupyterhub --groups "$groups" --no-new-privs \
    jupyterhub -f /etc/jupyterhub/jupyterhub_config.py "$@"
