"""The hand-over: everything the hub sends to a user's server, in one place.

The hub talks to a user's server as the JupyterHub service ``contract.HANDOVER_SERVICE``; what
it sends where is ``openbis_jupyterhub.contract``, and the server's side is
``openbis_jupyterhub.singleuser``. Here:

- ``configure(c)`` (called by ``hub/jupyterhub_config.py``): registers that service with a new
  API token, made at every start of the hub and kept in this process's memory only;
- ``send_token(user)``: the user's newest openBIS token (from ``auth_state``) into their
  running server (``PUT contract.TOKEN_PATH``). Sign-in (``auth.py``) calls it after every
  sign-in, the notebook endpoints (``handlers.py``) when the ELN brings a new token or before
  re-opening an analysis;
- ``send_token_when_ready(user, spawner)``: the first token, the moment a starting server is
  ready (``OpenBISAuthenticator.pre_spawn_start`` schedules it);
- ``call(spawner, path, body, timeout)``: a POST to one of the server's endpoints with a JSON
  answer (the notebook endpoints: ``contract.NOTEBOOKS_PATH``, ``contract.REOPEN_PATH``);
- ``fetch(spawner, path, …)``: every request above goes through it, with the service's token,
  and with the hub's internal certificate when JupyterHub's ``internal_ssl`` is on.
"""

import asyncio
import json
import secrets
import time
from functools import lru_cache

from jupyterhub.utils import make_ssl_context, url_path_join
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from .. import contract

# The service's API token. configure() makes it when the hub loads its configuration, in the
# hub's own process; nothing stores it, and user servers check it with the hub as any token.
_service_token = ""


def configure(c) -> None:
    """Register the hand-over service (role ``access:servers`` only) with a new API token."""
    global _service_token
    _service_token = secrets.token_hex(32)
    c.JupyterHub.services.append({"name": contract.HANDOVER_SERVICE, "api_token": _service_token})
    c.JupyterHub.load_roles.append(
        {
            "name": contract.HANDOVER_SERVICE,
            "services": [contract.HANDOVER_SERVICE],
            "scopes": contract.HANDOVER_SCOPES,
        }
    )


class ServerUnavailable(Exception):
    """The user's server did not answer a hand-over request."""


class ServerRefused(Exception):
    """The user's server answered a hand-over request with an error status."""

    def __init__(self, code: int, reason: str | None):
        super().__init__(code, reason)
        self.code, self.reason = code, reason


@lru_cache
def _client_ssl_context(key: str, cert: str, ca: str):
    # one per certificate for the hub's lifetime: loading them costs ~35 ms per request
    return make_ssl_context(key, cert, ca)


def _internal_ssl(settings: dict):
    """The hub's client certificate for user servers when JupyterHub's internal_ssl is on
    (they then accept TLS clients signed by the hub's or the proxy's CA only)."""
    if not settings.get("internal_ssl"):
        return None
    return _client_ssl_context(
        settings["internal_ssl_key"], settings["internal_ssl_cert"], settings["internal_ssl_ca"]
    )


async def fetch(spawner, path: str, **kwargs):
    """A request of the hand-over service to the user's server (``path`` below its URL)."""
    if not _service_token:
        raise RuntimeError("openbis_jupyterhub.hub.handover.configure(c) was not called")
    headers = {**kwargs.pop("headers", {}), **contract.authorization(_service_token)}
    request = HTTPRequest(
        url_path_join(spawner.server.url, path),
        headers=headers,
        ssl_options=_internal_ssl(spawner.user.settings),
        **kwargs,
    )
    # tornado's own client (as for openBIS): the configured curl client refuses ssl_options
    return await SimpleAsyncHTTPClient().fetch(request)


def _reason_of(body: bytes) -> str | None:
    """The ``reason`` of a JSON error answer (ours and Jupyter's API handlers give one)."""
    try:
        reason = json.loads(body)["reason"]
    except (ValueError, KeyError, TypeError):
        return None
    return reason if isinstance(reason, str) and reason else None


async def call(spawner, path: str, body: bytes, timeout: float) -> dict:
    """POST ``body`` to ``path`` below the user's server; its JSON answer. ``ServerRefused``
    (with the server's reason, when it gave one) or ``ServerUnavailable`` otherwise."""
    try:
        response = await fetch(spawner, path, method="POST", body=body, request_timeout=timeout)
    except HTTPClientError as e:
        if e.response is None or e.code == 599:
            raise ServerUnavailable(f"Your Jupyter server did not answer: {e}") from e
        raise ServerRefused(e.code, _reason_of(e.response.body)) from e
    except OSError as e:
        raise ServerUnavailable(f"Your Jupyter server did not answer: {e}") from e
    return json.loads(response.body)


async def send_token(user) -> None:
    """Push the newest token from auth_state into the user's running server.

    ``Openbis()`` run afterwards in any kernel uses it; nothing restarts.
    """
    spawner = user.spawner
    if not spawner.ready or spawner.server is None:
        return
    auth_state = await user.get_auth_state() or {}
    token = auth_state.get("openbis_token")
    if not token:
        return
    try:
        await fetch(
            spawner,
            contract.TOKEN_PATH,
            method="PUT",
            body=json.dumps({"token": token}),
            request_timeout=10,
        )
    except (HTTPClientError, OSError) as e:
        # the server keeps its older token; the next sign-in hands it over again
        spawner.log.warning("Could not hand the new openBIS token to %s: %s", user.name, e)


def send_token_when_ready(user, spawner) -> None:
    """Hand the first token over the moment JupyterHub sees the starting server answer."""
    task = asyncio.ensure_future(_send_token_when_ready(user, spawner))
    # keep a reference: the event loop holds tasks weakly
    spawner._openbis_handover_task = task


async def _send_token_when_ready(user, spawner):
    # JupyterHub has no hook for that moment: this looks while a start may take
    deadline = time.monotonic() + spawner.start_timeout + spawner.http_timeout
    while spawner.pending == "spawn" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if spawner.ready:
        await send_token(user)
