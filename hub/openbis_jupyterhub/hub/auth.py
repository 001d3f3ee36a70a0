"""Sign in to JupyterHub with an openBIS session token (from the ELN) or a password.

The flow, top to bottom:

1. The ELN opens ``/hub/login?token=T&next=/user/{userId}/…``. ``OpenBISLoginHandler``
   asks openBIS whose session ``T`` is (``isSessionActive``, ``getSessionInformation``),
   signs the browser in as that openBIS user id (case kept) and redirects to ``next``
   through ``/hub/spawn`` when the user's server is not running yet. The redirect is a
   302, so the URL with the token never stays in the address bar or the history.
2. ``/hub/login`` without a token shows JupyterHub's username/password form; the
   password is checked with openBIS ``login`` and the new session is used like an ELN token.
3. The token lives in encrypted ``auth_state``. It is pushed to the user's server as soon
   as the server is ready, and again after every sign-in, by ``handover.py``; our server
   extension (``openbis_jupyterhub.singleuser``) writes it to ``~/.pybis/<host>.token`` for
   pyBIS. It is never in the container's environment. What both sides agree on is
   ``openbis_jupyterhub.contract``.

The authenticator also registers the notebook endpoints (``handlers.py``: the ELN's, the
templates', the re-run link ``/hub/openbis-notebook/open/<permId>``) below the hub's prefix
through ``get_handlers``, next to the sign-in they share.

No Linux users exist anywhere: a user the hub has never seen is created on first sign-in,
so every ELN link works after a hub restart or upgrade.
"""

from functools import cached_property
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jupyterhub.auth import Authenticator
from jupyterhub.handlers.login import LoginHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat
from traitlets import Float, Unicode, default, validate

from .. import contract, logscrub
from . import handover
from .handlers import NotebookEndpoint
from .handlers import handlers as notebook_handlers
from .openbis import OpenBIS, OpenBISUnavailable


def _without_token(url: str) -> str:
    """``url`` minus a ``token`` parameter (JupyterHub carries the login page's query over
    to the default landing URL when no ``next`` is given)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


class OpenBISLoginHandler(LoginHandler):
    """``/hub/login``: ``?token=`` signs in with an openBIS session; else the password form."""

    async def get(self):
        token = self.get_argument("token", "")
        if not token:
            return await super().get()
        user = await self.login_user({"token": token})
        if user is None and getattr(self, "openbis_user_id", None):
            self._fail(
                403,
                f"The openBIS user {self.openbis_user_id} may not use this JupyterHub.",
                "Ask your openBIS admin for access.",
            )
        if user is None:
            self._fail(
                403,
                "Your openBIS session is not valid (expired or logged out).",
                "Open Jupyter again from the openBIS ELN to start a new session.",
            )
        self.redirect(self.authenticator.landing_url(self, user))

    async def login_user(self, data=None):
        # both sign-in paths (token GET, password form POST) come through here
        try:
            user = await super().login_user(data)
        except OpenBISUnavailable as e:
            self._fail(503, str(e), "Try again later or tell your openBIS admin.")
        if user is not None:
            self._jupyterhub_user = user
            await handover.send_token(user)
        return user

    def _fail(self, status, message, hint):
        link = escape(self.authenticator.eln_url, quote=True)
        self.extra_error_html = (
            f"<p>{escape(hint)}</p><p><a href='{link}'>Back to the openBIS ELN</a></p>"
        )
        # the message goes in as an argument: tornado %-formats it when logging
        error = web.HTTPError(status, "%s", message)
        error.jupyterhub_message = message
        raise error


class OpenBISAuthenticator(NotebookEndpoint, Authenticator):
    """Authenticate JupyterHub users against openBIS.

    Accepts openBIS session tokens and personal access tokens (``?token=`` on
    ``/hub/login``, as the ELN sends them) and username/password. The JupyterHub user
    name is the openBIS user id exactly as openBIS spells it.
    """

    openbis_url = Unicode(
        config=True,
        help="""URL of the openBIS server, e.g. ``https://openbis.example.org``.

        The hub checks tokens against it, and user servers get it as ``OPENBIS_URL``.""",
    )
    openbis_ca_file = Unicode(
        "",
        config=True,
        help="""PEM file with the CA that signed the openBIS certificate, for openBIS
        servers with an internal CA. Trusted in addition to the system CAs, by the hub
        and (as ``OPENBIS_CA_CERT``) by pyBIS in the user servers. Verification is never
        turned off.""",
    )
    eln_url = Unicode(
        config=True,
        help="URL of the openBIS ELN, linked from error pages. Default: the ELN under openbis_url.",
    )
    openbis_timeout = Float(
        10, config=True, help="Seconds to wait for openBIS before answering 503."
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        logscrub.install(self.log)

    @default("eln_url")
    def _eln_url_default(self):
        return url_path_join(self.openbis_url, "openbis/webapp/eln-lims/")

    @validate("openbis_url")
    def _validate_openbis_url(self, proposal):
        url = proposal.value.rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"openbis_url must start with https:// (got {url!r})")
        return url

    @default("allow_all")
    def _allow_all_default(self):
        # everyone openBIS accepts may sign in, unless an admin restricts it
        return not (self.allowed_users or self.allow_existing_users)

    @default("enable_auth_state")
    def _enable_auth_state_default(self):
        return True

    def normalize_username(self, username):
        # openBIS user ids are case-sensitive and the ELN puts them unchanged into links
        return self.username_map.get(username, username)

    def get_handlers(self, app):
        # JupyterHub serves these below its prefix: /hub/login, /hub/openbis-notebook, …
        return [("/login", OpenBISLoginHandler), *notebook_handlers]

    @cached_property
    def openbis(self) -> OpenBIS:
        # one client for the hub's lifetime: its TLS context (loading the CAs) costs ~35 ms
        return OpenBIS(self.openbis_url, self.openbis_ca_file, self.openbis_timeout)

    async def authenticate(self, handler, data):
        """Check a session token (``data["token"]``) or username/password with openBIS."""
        token = data.get("token")
        if not token:
            username, password = data.get("username", ""), data.get("password", "")
            if not username or not password:
                return None
            token = await self.openbis.login(username, password)
            if token is None:
                return None
        user_id = await self.openbis.session_user(token)
        if user_id is None:
            self.log.warning("openBIS refused a session token")
            return None
        # lets the login page tell "not allowed here" apart from "session not valid"
        handler.openbis_user_id = user_id
        return {"name": user_id, "auth_state": {"openbis_token": token}}

    def landing_url(self, handler, user) -> str:
        """Where a fresh sign-in goes: ``next`` (or the user's server), started on the way."""
        next_url = _without_token(handler.get_next_url(user))
        spawner = user.spawner
        if spawner.ready or not next_url.startswith(user.prefix):
            return next_url
        spawn = url_path_join(handler.hub.base_url, "spawn", user.escaped_name)
        return url_concat(spawn, {"next": next_url})

    async def pre_spawn_start(self, user, spawner):
        """Give the server the openBIS URL and CA; the token follows once it is ready."""
        env = {contract.ENV_OPENBIS_URL: self.openbis_url}
        if self.openbis_ca_file:
            with open(self.openbis_ca_file) as f:
                env[contract.ENV_OPENBIS_CA_CERT] = f.read()
        # a new dict: the configured one may be shared between spawners
        spawner.environment = {**spawner.environment, **env}
        if spawner.pending == "spawn":
            handover.send_token_when_ready(user, spawner)
