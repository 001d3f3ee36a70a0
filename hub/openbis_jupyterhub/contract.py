"""The contract between the hub and every user's server: the one module both sides import.

The hub (``openbis_jupyterhub.hub``) and our Jupyter server extension in each user's container
(``openbis_jupyterhub.singleuser``) run in different containers, maybe on different hosts, and
during an upgrade from different image versions. They share nothing but what is here:

- **the environment** a user's server starts with (``ENV_*``): the openBIS URL and CA only. No
  credential is ever in it: a container's environment shows in ``docker inspect`` and
  ``/proc/*/environ``;
- **two hand-over endpoints** below the server's base URL:
  ``PUT {server}/openbis/token`` with ``{"token": T}`` (the user's newest openBIS session token,
  sent when the server is ready and after every sign-in) and
  ``POST {server}/openbis/notebooks?folder=&filename=&test=`` with a notebook from the ELN;
  and one call of the openBIS panel's API that the hub makes too:
  ``POST {server}/openbis/api/reopen`` with ``{"permId": P}`` (the ``/hub/openbis-notebook/open/P``
  link: a saved analysis into a new folder; answers ``{"folder", "notebook", …}``);
- **how those requests prove they come from the hub**: ``Authorization: token <T>`` with the
  API token of the JupyterHub service ``HANDOVER_SERVICE``. The hub makes that token at every
  start and keeps it in memory only; its role grants ``access:servers`` and nothing else. The
  server checks it the standard way (JupyterHub's ``HubAuth`` asks the hub whose token it is)
  and our handlers then accept that service's identity only (``is_handover``): not the user's
  own tokens or cookie, not another service;
- **where pyBIS finds the token** in the user's home (``token_path``, mode 0600).

Where does the hub hand the token to the user's server? ``hub/handover.py`` sends it
(``send_token``: when a server becomes ready and after every sign-in) and makes every other
request to user servers; ``singleuser.TokenHandler`` receives it. Both build their side from
this module.
"""

import re
from pathlib import Path
from urllib.parse import urlparse

# --- the environment of a user's server --------------------------------------------------------
ENV_OPENBIS_URL = "OPENBIS_URL"  # the openBIS server; pyBIS's Openbis() reads it
ENV_OPENBIS_CA_CERT = "OPENBIS_CA_CERT"  # PEM text of an internal CA (the image trusts it)

# --- the hand-over endpoints, below the server's base URL --------------------------------------
TOKEN_PATH = "openbis/token"  # noqa: S105 (a URL path)
NOTEBOOKS_PATH = "openbis/notebooks"
REOPEN_PATH = "openbis/api/reopen"  # the panel's API; the user and the hand-over call it
# what both sides accept as a dataset permId (20240115093000000-4); \Z: $ allows a final "\n"
PERM_ID = re.compile(r"^\d{17}-\d+\Z")

# --- who may call them: the hub, as this JupyterHub service ----------------------------------
HANDOVER_SERVICE = "openbis-handover"
HANDOVER_SCOPES = ["access:servers"]


def authorization(service_token: str) -> dict[str, str]:
    """The header the hub sends with every hand-over request."""
    return {"Authorization": f"token {service_token}"}


def is_handover(identity: dict | None) -> bool:
    """True when JupyterHub's model of a request's sender (``HubAuth.get_user``) is the
    hand-over service: a user, even the server's owner, or any other service is refused."""
    return bool(identity) and (identity.get("kind"), identity.get("name")) == (
        "service",
        HANDOVER_SERVICE,
    )


def token_path(openbis_url: str, home: Path | None = None) -> Path:
    """Where pyBIS's ``Openbis()`` looks for the saved session token of ``openbis_url``."""
    return (home or Path.home()) / ".pybis" / f"{urlparse(openbis_url).hostname}.token"
