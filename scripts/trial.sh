# shellcheck shell=bash
# The trial's settings (scripts/trial, scripts/trial-down): its own compose project, network,
# names and volumes, the openBIS double in place of openBIS, ports on 127.0.0.1. Sourced.
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
TRIAL_NAME=${TRIAL_NAME:-openbis-jupyterhub-trial}
TRIAL_PORT=${TRIAL_PORT:-8000}
TRIAL_ELN_PORT=${TRIAL_ELN_PORT:-8001}
export TRIAL_ELN_PORT
# plain http on this host: no certificate for anyone to accept (start-hub.sh)
export JUPYTERHUB_PUBLIC_URL=http://localhost:$TRIAL_PORT
export JUPYTERHUB_PORT=127.0.0.1:$TRIAL_PORT
export OPENBIS_URL=https://openbis:8443
export OPENBIS_ELN_ORIGINS=http://localhost:$TRIAL_ELN_PORT,http://127.0.0.1:$TRIAL_ELN_PORT
export OPENBIS_ELN_URL=http://localhost:$TRIAL_ELN_PORT/openbis/webapp/eln-lims/
export JUPYTERHUB_ADMIN_USERS=admin
export JUPYTERHUB_MEM_LIMIT=2G
export JUPYTERHUB_NETWORK=$TRIAL_NAME
export JUPYTERHUB_CONTAINER_PREFIX=$TRIAL_NAME
export JUPYTERHUB_VOLUME_PREFIX=$TRIAL_NAME-user-
# --env-file /dev/null: the trial never reads an admin's .env
COMPOSE="docker compose -p $TRIAL_NAME -f compose.yaml -f compose.double.yaml"
COMPOSE="$COMPOSE -f compose.trial.yaml --env-file /dev/null"
export COMPOSE
