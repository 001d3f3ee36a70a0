# JupyterHub configuration for openBIS. Every setting comes from the environment (the compose
# stack fills it from .env): openbis_jupyterhub.hub.settings lists them with their defaults and
# turns them into traitlets. Site overrides: *.py files in JUPYTERHUB_CONFIG_D, loaded last.
import sys
from pathlib import Path

from openbis_jupyterhub.hub import handover, settings, spawners

c = get_config()  # noqa: F821 (provided by JupyterHub)
env = settings.read()
settings.apply(c, env)

# --- the hub -----------------------------------------------------------------------------------
c.JupyterHub.db_url = f"sqlite:///{env['JUPYTERHUB_STATE_DIR']}/jupyterhub.sqlite"
default_cookie_secret = f"{env['JUPYTERHUB_STATE_DIR']}/jupyterhub_cookie_secret"
c.JupyterHub.cookie_secret_file = env["JUPYTERHUB_COOKIE_SECRET_FILE"] or default_cookie_secret
# Docker Swarm hands the crypt key over as a secret file (JupyterHub reads it only from the
# environment otherwise): ";"-separated keys, the first encrypts (key rotation)
if env["JUPYTERHUB_CRYPT_KEY_FILE"]:
    c.CryptKeeper.keys = Path(env["JUPYTERHUB_CRYPT_KEY_FILE"]).read_text().strip().split(";")
# sign-in with openBIS session tokens; also serves the ELN's /hub/openbis-notebook endpoint
c.JupyterHub.authenticator_class = "openbis"
# the hub hands openBIS tokens and ELN notebooks to user servers as this service (contract.py)
handover.configure(c)
# user servers outlive hub restarts and upgrades; the hub finds them again from its database
c.JupyterHub.cleanup_servers = False
# gzip for the hub's pages, scripts and API answers (its versioned static files, ?v=, are
# cached for good by browsers already); the proxy passes the compressed bodies through
c.JupyterHub.tornado_settings = {"compress_response": True}

# --- user servers: the spawner JUPYTERHUB_SPAWNER names (openbis_jupyterhub.hub.spawners) -----
spawners.configure(c, env)
c.Spawner.default_url = "/lab"
# Many users opening notebooks at once (a class, a lab meeting) make servers slow to start on a
# small host: with JupyterHub's defaults (60 s to start, 30 s to answer) it gives up on them and
# the ELN shows an error, although they would be ready moments later.
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 120

# --- idle culler: stop servers nobody used for a while (their volumes stay) ----------------------
if env["JUPYTERHUB_CULL_TIMEOUT"] > 0:
    culler = [sys.executable, "-m", "jupyterhub_idle_culler"]
    culler.append(f"--timeout={env['JUPYTERHUB_CULL_TIMEOUT']}")
    if c.JupyterHub.get("internal_ssl"):
        # the culler reaches the hub API with the hub's own internal certificate
        culler.append("--ssl-enabled=true")
        culler.append(f"--internal-certs-location={c.JupyterHub.internal_certs_location}")
    c.JupyterHub.services.append({"name": "idle-culler", "command": culler})
    c.JupyterHub.load_roles.append(
        {
            "name": "idle-culler",
            "services": ["idle-culler"],
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        }
    )

# --- site overrides: every *.py in JUPYTERHUB_CONFIG_D, in name order, last --------------------
for site_config in sorted(Path(env["JUPYTERHUB_CONFIG_D"]).glob("*.py")):
    load_subconfig(str(site_config))  # noqa: F821 (provided by JupyterHub)
