"""The contract between the hub and every user's server: the one module both sides import.

The hub (``openbis_jupyterhub.hub``) and our Jupyter server extension in each user's container
(``openbis_jupyterhub.singleuser``) run in different containers, maybe on different hosts, and
during an upgrade from different image versions. They share nothing but what is here:

- **the environment** a user's server starts with (``ENV_*``);
- **two hand-over endpoints** below the server's base URL:
  ``PUT {server}/openbis/token`` with ``{"token": T}`` (the user's newest openBIS session token)
  and ``POST {server}/openbis/notebooks?folder=&filename=&test=`` with a notebook from the ELN;
- **how those requests prove they come from the hub**: ``Authorization: Bearer <secret>``,
  the secret being an HMAC of the user name under the hub's ``JUPYTERHUB_CRYPT_KEY``
  (``handover_secret``), so it survives hub restarts without being stored anywhere;
- **where pyBIS finds the token** in the user's home (``token_path``).

Where does the hub hand the token to the user's server? ``hub.auth.OpenBISAuthenticator``
sends it (``pre_spawn_start`` at start, ``hand_over_token`` after every sign-in) and
``singleuser.TokenHandler`` receives it; both build their side from this module.
"""

import hashlib
import hmac
from pathlib import Path
from urllib.parse import urlparse

# --- the environment of a user's server --------------------------------------------------------
ENV_OPENBIS_URL = "OPENBIS_URL"  # the openBIS server; pyBIS's Openbis() reads it
ENV_OPENBIS_CA_CERT = "OPENBIS_CA_CERT"  # PEM text of an internal CA (the image trusts it)
ENV_OPENBIS_TOKEN = "OPENBIS_TOKEN"  # noqa: S105 (a variable name) the first token
ENV_HANDOVER_SECRET = "OPENBIS_HANDOVER_SECRET"  # noqa: S105 (a variable name)

# --- the hand-over endpoints, below the server's base URL --------------------------------------
TOKEN_PATH = "openbis/token"  # noqa: S105 (a URL path)
NOTEBOOKS_PATH = "openbis/notebooks"


def handover_secret(key: bytes, username: str) -> str:
    """The secret the hub and ``username``'s server share: HMAC-SHA256 of the user name under
    ``key`` (the hub's first ``JUPYTERHUB_CRYPT_KEY``). Each user's server knows only its own."""
    return hmac.new(key, f"openbis-handover:{username}".encode(), hashlib.sha256).hexdigest()


def authorization(secret: str) -> dict[str, str]:
    """The header the hub sends with every hand-over request."""
    return {"Authorization": f"Bearer {secret}"}


def is_authorized(header: str, secret: str) -> bool:
    """True when an ``Authorization`` header carries ``secret`` (compared in constant time)."""
    given = header.removeprefix("Bearer ")
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


def token_path(openbis_url: str, home: Path | None = None) -> Path:
    """Where pyBIS's ``Openbis()`` looks for the saved session token of ``openbis_url``."""
    return (home or Path.home()) / ".pybis" / f"{urlparse(openbis_url).hostname}.token"
