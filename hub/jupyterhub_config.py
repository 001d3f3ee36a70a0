# JupyterHub configuration for openBIS. Every setting comes from the environment (the
# compose stack fills it from .env); this file turns it into traitlets. See README.md.
import os
import sys

from openbis_jupyterhub import kubernetes
from openbis_jupyterhub.handlers import handlers as notebook_handlers

c = get_config()  # noqa: F821 (provided by JupyterHub)


def env_list(name):
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


# --- hub ---------------------------------------------------------------------------------
state_dir = os.environ.get("JUPYTERHUB_STATE_DIR", "/srv/jupyterhub")
c.JupyterHub.db_url = f"sqlite:///{state_dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state_dir}/jupyterhub_cookie_secret"
c.JupyterHub.bind_url = os.environ.get("JUPYTERHUB_BIND_URL", "http://:8000")
# user containers reach the hub API over the Docker network
c.JupyterHub.hub_ip = os.environ.get("JUPYTERHUB_HUB_IP", "0.0.0.0")  # noqa: S104
if os.environ.get("JUPYTERHUB_SSL_CERT"):
    c.JupyterHub.ssl_cert = os.environ["JUPYTERHUB_SSL_CERT"]
    c.JupyterHub.ssl_key = os.environ["JUPYTERHUB_SSL_KEY"]

# --- sign-in with openBIS -------------------------------------------------------------------
c.JupyterHub.authenticator_class = "openbis"
c.OpenBISAuthenticator.openbis_url = os.environ["OPENBIS_URL"]
c.OpenBISAuthenticator.openbis_ca_file = os.environ.get("OPENBIS_CA_FILE", "")
if os.environ.get("OPENBIS_ELN_URL"):
    c.OpenBISAuthenticator.eln_url = os.environ["OPENBIS_ELN_URL"]
c.Authenticator.admin_users = env_list("JUPYTERHUB_ADMIN_USERS")
c.Authenticator.allowed_users = env_list("JUPYTERHUB_ALLOWED_USERS")
# user servers outlive hub restarts and upgrades; the hub finds them again from its database
c.JupyterHub.cleanup_servers = False

# --- ELN notebook endpoint ---------------------------------------------------------------
# {hub public URL}/hub/openbis-notebook is what the ELN's jupyterIntegrationServerEndpoint
# points at; /hub/openbis-notebook/t/<template>?params= serves notebook templates.
# (extra_handlers logs a deprecation warning; it is still the way to serve from the hub's
# own port and prefix, next to the sign-in that these endpoints share.)
c.JupyterHub.extra_handlers = notebook_handlers
if os.environ.get("OPENBIS_ELN_ORIGINS"):
    c.NotebookEndpoint.eln_origins = sorted(env_list("OPENBIS_ELN_ORIGINS"))
if os.environ.get("OPENBIS_NOTEBOOK_MAX_BYTES"):
    c.NotebookEndpoint.max_notebook_bytes = int(os.environ["OPENBIS_NOTEBOOK_MAX_BYTES"])
if os.environ.get("OPENBIS_NOTEBOOK_TEMPLATES"):
    c.NotebookEndpoint.templates_dir = os.environ["OPENBIS_NOTEBOOK_TEMPLATES"]

# --- user servers: DockerSpawner, or KubeSpawner with JUPYTERHUB_SPAWNER=kubernetes --------
# Kubernetes: one pod and one home PVC per user (openbis_jupyterhub/kubernetes.py, which the
# Zero to JupyterHub values in deploy/kubernetes/ use too).
spawner = os.environ.get("JUPYTERHUB_SPAWNER") or "docker"
if spawner == "kubernetes":
    kubernetes.configure(c, os.environ)
else:
    # One container per user from the single-user image, on a fixed-name Docker network the hub
    # shares with them: the hub reaches each server directly (proxy routes, token hand-over).
    # Containers are removed when they stop; the user's files live on a named volume.
    c.JupyterHub.spawner_class = "docker"
    # (`or`: a setting left empty in .env means its default)
    c.DockerSpawner.image = (
        os.environ.get("JUPYTERHUB_SINGLEUSER_IMAGE") or "openbis-jupyterhub/singleuser:latest"
    )
    c.DockerSpawner.network_name = os.environ.get("JUPYTERHUB_NETWORK") or "openbis-jupyterhub"
    c.DockerSpawner.use_internal_ip = True
    if os.environ.get("JUPYTERHUB_HUB_CONNECT_IP"):
        # the hub's name on that network, as user containers resolve it
        c.JupyterHub.hub_connect_ip = os.environ["JUPYTERHUB_HUB_CONNECT_IP"]
    # {username} is DockerSpawner's escaped user id (lower case, `-xx` escapes), valid for Docker
    # names and distinct for ids differing only in case: "JDoe" -> "-4a-44oe", "jdoe" -> "jdoe".
    # The prefixes change only to run two stacks on one Docker engine (the tests do).
    c.DockerSpawner.prefix = os.environ.get("JUPYTERHUB_CONTAINER_PREFIX") or "jupyter"
    volume_prefix = os.environ.get("JUPYTERHUB_VOLUME_PREFIX") or "jupyterhub-user-"
    c.DockerSpawner.volumes = {volume_prefix + "{username}": "/home/jovyan"}
    c.DockerSpawner.notebook_dir = "/home/jovyan"
    c.DockerSpawner.default_url = "/lab"
    c.DockerSpawner.remove = True
    # Many users opening notebooks at once (a class, a lab meeting) make servers slow to start on a
    # small host: with JupyterHub's defaults (60 s to start, 30 s to answer) it gives up on them and
    # the ELN shows an error, although they would be ready moments later.
    c.Spawner.start_timeout = 180
    c.Spawner.http_timeout = 120
    if os.environ.get("JUPYTERHUB_MEM_LIMIT"):
        c.DockerSpawner.mem_limit = os.environ["JUPYTERHUB_MEM_LIMIT"]
    if os.environ.get("JUPYTERHUB_CPU_LIMIT"):
        c.DockerSpawner.cpu_limit = float(os.environ["JUPYTERHUB_CPU_LIMIT"])

# --- idle culler: stop servers nobody used for a while (their volumes stay) ----------------
cull_timeout = int(os.environ.get("JUPYTERHUB_CULL_TIMEOUT") or 3600)
if cull_timeout > 0:
    c.JupyterHub.services = [
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={cull_timeout}",
            ],
        }
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "idle-culler",
            "services": ["idle-culler"],
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        }
    ]
