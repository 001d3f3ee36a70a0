# JupyterHub configuration for openBIS. Every setting comes from the environment (the
# compose stack fills it from .env); this file turns it into traitlets. See README.md.
import os

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
