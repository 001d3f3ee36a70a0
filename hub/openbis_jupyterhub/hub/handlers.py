"""The hub's notebook endpoints: the openBIS ELN's "New Jupyter Notebook", and templates.

``/hub/openbis-notebook`` is the URL an openBIS admin enters as the ELN's
``jupyterIntegrationServerEndpoint``. The ELN (a client we cannot change) sends, from the
user's browser, two POSTs with ``?token=T&folder=D&filename=N.ipynb&test=True|False``:
first with the body ``TEST`` (which free name would the notebook get?), then with the
notebook JSON (write it). Both answer ``{"fileName", "path"}``. On every request:

1. the openBIS session token is checked with openBIS, the user id comes from openBIS; a user
   the hub has never seen is created, the token is stored as the user's newest and handed to
   their running server;
2. the user's server is started when it is not running, and the request waits until it is
   ready, so the notebook link the ELN opens next is already warm;
3. the user's server writes the file itself (``singleuser.NotebookHandler``): no host path is
   shared between hub and user containers, and an existing file is never overwritten.

Tokens and requests reach user servers through ``handover.py``.

``/hub/openbis-notebook/t/<template>?params=<JSON>`` is the SampleDB notebook-template
protocol: a signed-in user confirms, then gets the template with the parameters filled in.

``/hub/openbis-notebook/open/<dataset permId>`` re-opens a saved analysis (ANALYSIS_NOTEBOOK
dataset): a signed-in user confirms, their server fetches it into a new folder, and the
notebook opens in JupyterLab with the environment banner.
"""

import asyncio
import json
from html import escape
from pathlib import Path
from urllib.parse import quote, unquote, urlencode, urlparse

import nbformat
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Integer, List, Unicode, default
from traitlets.config import Configurable

from .. import contract
from ..validator import check_folder, check_notebook_filename
from . import handover, templates
from .openbis import OpenBISUnavailable

ENDPOINT_PATH = "/openbis-notebook"  # below the hub's prefix: {hub public URL}/hub/openbis-notebook
# how far over the size limit a body is still read (and dropped) to answer with a JSON 413
OVERSIZE_DISCARD_BYTES = 1 << 30


class NotebookEndpoint(Configurable):
    """Settings of ``/hub/openbis-notebook`` (the ELN's jupyterIntegrationServerEndpoint).

    ``OpenBISAuthenticator`` inherits them, so ``jupyterhub --help-all`` lists them under its
    name; ``c.NotebookEndpoint.…`` and ``c.OpenBISAuthenticator.…`` both set them."""

    eln_origins = List(
        Unicode(),
        config=True,
        help="""Origins (``https://host[:port]``) of the openBIS ELN pages allowed to read the
        endpoint's answers (CORS). Other origins get no grant, so their pages cannot see
        the answer. Default (empty): the origin of ``OpenBISAuthenticator.openbis_url``.""",
    )
    max_notebook_bytes = Integer(
        20 * 1024 * 1024,
        config=True,
        help="Largest notebook the ELN may send, in bytes; larger ones are refused with 413.",
    )
    templates_dir = Unicode(
        config=True,
        help="""Folder with the notebook templates (``*.ipynb``) for ``/hub/openbis-notebook/t/``.
        Default: the repository's notebook_templates/ when the hub runs from a checkout,
        else /srv/jupyterhub/notebook_templates (where the hub image puts them).""",
    )

    @default("templates_dir")
    def _templates_dir_default(self):
        checkout = Path(__file__).resolve().parents[3] / "notebook_templates"
        return str(checkout if checkout.is_dir() else "/srv/jupyterhub/notebook_templates")

    def allowed_origins(self, openbis_url: str) -> set[str]:
        if self.eln_origins:
            return {origin.rstrip("/") for origin in self.eln_origins}
        url = urlparse(openbis_url)
        return {f"{url.scheme}://{url.netloc}"}


class _NotebookWriter:
    """What both endpoints share: settings, starting the user's server, writing through it."""

    @property
    def endpoint(self) -> NotebookEndpoint:
        # OpenBISAuthenticator is a NotebookEndpoint: its settings are the authenticator's
        return self.authenticator

    async def ensure_server(self, user):
        """The user's default server, started and waited for when it is not running."""
        spawner = user.spawner
        timeout = spawner.start_timeout + spawner.http_timeout
        try:
            if spawner.pending == "stop" and spawner._stop_future:
                await asyncio.wait_for(asyncio.shield(spawner._stop_future), timeout)
            if not spawner.active:
                self.log.info("Starting %s's server for a notebook", user.name)
                await self.spawn_single_user(user)
            # spawn_single_user returns early for slow starts; another request may be starting it
            if spawner.pending == "spawn" and spawner._spawn_future:
                await asyncio.wait_for(asyncio.shield(spawner._spawn_future), timeout)
        except web.HTTPError:
            raise
        except Exception as e:
            self.log.error("Server of %s did not start: %s", user.name, e)
            raise http_error(503, f"Your Jupyter server could not be started: {e}") from e
        if not spawner.ready:
            raise http_error(503, "Your Jupyter server could not be started; try again.")
        return spawner

    async def post_to_server(self, spawner, path: str, body: bytes, timeout: float) -> dict:
        """``handover.call``: 503 when the server does not answer; ``ServerRefused`` stays."""
        try:
            return await handover.call(spawner, path, body, timeout)
        except handover.ServerUnavailable as e:
            raise http_error(503, str(e)) from e

    async def write_through_server(self, user, folder: str, filename: str, test: bool, body=b""):
        """Have the user's server pick the free name (and write, unless ``test``)."""
        spawner = await self.ensure_server(user)
        query = urlencode({"folder": folder, "filename": filename, "test": str(test)})
        try:
            return await self.post_to_server(
                spawner, contract.NOTEBOOKS_PATH + "?" + query, body, timeout=60
            )
        except handover.ServerRefused as e:
            if e.code == 403:
                # servers started before the hand-over became the openbis-handover service
                # (an upgrade) refuse the hub; they accept it again from their next start
                raise http_error(503, OUTDATED_SERVER) from e
            reason = e.reason or f"Your Jupyter server refused the notebook ({e.code})."
            raise http_error(e.code, reason) from e


OUTDATED_SERVER = (
    "Your Jupyter server does not accept notebooks from the hub: it was started before the "
    "hub's last upgrade. Restart it (File > Hub Control Panel > Stop My Server), then open the "
    "notebook again; your files stay."
)


def http_error(status: int, message: str) -> web.HTTPError:
    """An HTTPError whose message may quote user input, like a file name with a ``%``.

    Tornado %-formats an HTTPError's message with its arguments when it logs it, so the
    message goes in as an argument, never as the format.
    """
    return web.HTTPError(status, "%s", message)


def eln_query_arguments(query: str) -> dict[str, str]:
    """The query string as the ELN means it.

    The ELN puts folder and file names into the URL without encoding them; the browser then
    percent-encodes only what the URL standard requires (a space becomes %20) and leaves a
    ``+`` alone. Form decoding would turn that ``+`` into a space and put the notebook
    somewhere else than the link the ELN opens next, so only %-escapes are decoded here.
    """
    arguments = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        try:
            arguments.setdefault(unquote(name), unquote(value, errors="strict"))
        except UnicodeDecodeError as e:
            raise http_error(400, "The query string is not UTF-8.") from e
    return arguments


def check_notebook(body: bytes):
    """Raise 400 unless ``body`` is a valid nbformat v4 notebook."""
    try:
        notebook = json.loads(body)
    except ValueError as e:
        raise http_error(400, f"The notebook is not valid JSON: {e}") from e
    if not isinstance(notebook, dict) or notebook.get("nbformat") != 4:
        raise http_error(400, "The notebook is not in the Jupyter notebook format v4.")
    try:
        nbformat.validate(notebook)
    # nbformat's normalisation raises TypeError & co. on shapes its schema would refuse
    except (nbformat.ValidationError, TypeError, AttributeError, KeyError) as e:
        message = str(getattr(e, "message", e)).splitlines()[0][:300]
        raise http_error(400, f"The notebook is not a valid v4 notebook: {message}") from e


@web.stream_request_body
class ELNNotebookHandler(_NotebookWriter, BaseHandler):
    """``POST /hub/openbis-notebook``: the ELN's two requests. Answers are JSON, errors too."""

    # The openBIS token in the query is the only credential. A hub cookie the browser may
    # also send is ignored, so there is no ambient authority and no XSRF check to make.
    _accept_cookie_auth = False

    def check_xsrf_cookie(self):
        """Nothing to check: XSRF abuses cookies, and no cookie is accepted here."""

    def get_content_type(self):
        return "application/json"

    def set_default_headers(self):
        super().set_default_headers()
        # the answer differs by Origin, so caches must keep them apart
        self.set_header("Vary", "Origin")
        origin = self.request.headers.get("Origin")
        if origin and origin in self.endpoint.allowed_origins(self.authenticator.openbis_url):
            self.set_header("Access-Control-Allow-Origin", origin)

    async def prepare(self):
        await super().prepare()
        self._body = []
        self._size = 0
        limit = self.endpoint.max_notebook_bytes
        length = self.request.headers.get("Content-Length", "0")
        length = int(length) if length.isdigit() else 0
        # A body over the limit is still read (and dropped) before the 413 goes out: an answer
        # while the client is still sending makes the proxy reset the connection and reply
        # with its own HTML page. Tornado's own limit only stops bodies beyond that margin.
        self.request.connection.set_max_body_size(
            min(max(length, limit), limit + OVERSIZE_DISCARD_BYTES)
        )

    def data_received(self, chunk):
        self._size += len(chunk)
        if self._size <= self.endpoint.max_notebook_bytes:
            self._body.append(chunk)
        else:
            self._body = []

    def options(self):
        # CORS preflight (the ELN itself sends simple requests and needs none)
        self.set_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    async def post(self):
        limit = self.endpoint.max_notebook_bytes
        if self._size > limit:
            raise http_error(413, f"The notebook is larger than {limit} bytes.")
        args = eln_query_arguments(self.request.query)
        token = args.get("token")
        if not token:
            raise http_error(401, "The openBIS session token (token=) is missing.")
        missing = [name for name in ("folder", "filename", "test") if name not in args]
        if missing:
            raise http_error(400, f"Missing parameter(s): {', '.join(missing)}.")
        if args["test"].lower() not in ("true", "false"):
            raise http_error(400, "The parameter test must be True or False.")
        test = args["test"].lower() == "true"
        try:
            check_folder(args["folder"])
            check_notebook_filename(args["filename"])
        except ValueError as e:
            raise http_error(400, str(e)) from e
        body = b"".join(self._body)
        if not test:
            check_notebook(body)
        user = await self._sign_in(token)
        answer = await self.write_through_server(
            user, args["folder"], args["filename"], test, b"" if test else body
        )
        self.finish(answer)

    async def _sign_in(self, token):
        """The hub user of an openBIS session, created when new; the token is stored as newest."""
        try:
            authenticated = await self.authenticator.get_authenticated_user(self, {"token": token})
        except OpenBISUnavailable as e:
            raise http_error(503, str(e)) from e
        if not authenticated and getattr(self, "openbis_user_id", None):
            # set by the authenticator: a valid session of a user the hub does not allow
            raise http_error(
                403, f"The openBIS user {self.openbis_user_id} may not use this JupyterHub."
            )
        if not authenticated:
            raise http_error(
                401,
                "The openBIS session is not valid (expired or logged out). "
                "Log in to openBIS again.",
            )
        user = self.find_user(authenticated["name"])
        if user and (await user.get_auth_state() or {}).get("openbis_token") == token:
            return user  # stored and handed over before (the ELN's second POST)
        user = await self.auth_to_user(authenticated)
        await handover.send_token(user)
        return user

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args
        else:
            reason = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish({"reason": reason})


CONFIRM_PAGE = """{% extends "page.html" %}
{% block main %}
<div class="container">
  <h1>Create a notebook from a template</h1>
  <p>Template <strong>{{ template }}</strong> becomes <strong>{{ filename }}</strong>
     in your home folder (a free name is chosen if it exists).</p>
  <p>Parameters:</p>
  <pre id="openbis-template-params">{{ params }}</pre>
  <form method="post" action="{{ action }}">
    <input type="hidden" name="_xsrf" value="{{ xsrf }}">
    <button type="submit" class="btn btn-jupyter">Create notebook</button>
  </form>
</div>
{% endblock %}
"""


class NotebookTemplateHandler(_NotebookWriter, BaseHandler):
    """``/hub/openbis-notebook/t/<template>?params=<JSON>``: confirm, then create and open."""

    def _prepare_notebook(self, template_path):
        """(parameters, output file name, rendered notebook); an error page for every problem."""
        try:
            path = templates.find_template(Path(self.endpoint.templates_dir), template_path)
            params = templates.parse_parameters(self.get_query_argument("params", "{}"))
            template = nbformat.read(path, as_version=4)
            filename = templates.output_filename(path, template, params)
            notebook = templates.render(template, params)
        except templates.TemplateError as e:
            status = 404 if isinstance(e, templates.UnknownTemplate) else 400
            error = http_error(status, str(e))
            error.jupyterhub_message = str(e)
            raise error from e
        return params, filename, notebook

    @web.authenticated
    async def get(self, template_path):
        params, filename, _ = self._prepare_notebook(template_path)
        page = self.settings["jinja2_env"].from_string(CONFIRM_PAGE)
        html = await page.render_async(
            **self.template_namespace,
            template=template_path,
            filename=filename,
            params=json.dumps(params, indent=2, ensure_ascii=False),
            action=self.request.uri,
        )
        self.finish(html)

    @web.authenticated
    async def post(self, template_path):
        _, filename, notebook = self._prepare_notebook(template_path)
        user = self.current_user
        answer = await self.write_through_server(
            user, "", filename, False, nbformat.writes(notebook).encode()
        )
        self.redirect(url_path_join(user.url, "notebooks", quote(answer["path"], safe="/")))


REOPEN_PAGE = """{% extends "page.html" %}
{% block main %}
<div class="container">
  <h1>Re-open a saved analysis</h1>
  <p>The notebook of the openBIS dataset <strong id="openbis-dataset">{{ perm_id }}</strong>
     and the files saved with it go into a new folder <strong>{{ perm_id }}</strong> in your
     home (a free name is chosen if it exists; nothing is overwritten). It then opens in
     JupyterLab, with the environment it was made in beside the current one.</p>
  <form method="post" action="{{ action }}">
    <input type="hidden" name="_xsrf" value="{{ xsrf }}">
    <button type="submit" class="btn btn-jupyter">Open the analysis</button>
  </form>
</div>
{% endblock %}
"""
REOPEN_TIMEOUT = 600  # seconds: the server fetches every file saved with the notebook
OUTDATED_FOR_REOPEN = (
    "Your Jupyter server cannot re-open analyses: it was started before the hub's last "
    "upgrade. Restart it (File > Hub Control Panel > Stop My Server), then open the link "
    "again; your files stay."
)


class ReopenAnalysisHandler(_NotebookWriter, BaseHandler):
    """``/hub/openbis-notebook/open/<permId>``: a saved ANALYSIS_NOTEBOOK dataset, re-opened.

    A link for the ELN, a template or an email. GET asks the signed-in user to confirm
    (a link another site opens must not fill their home); POST starts their server when it
    is not running, has it fetch the dataset into a new folder (``lab_api.reopen``, as the
    hand-over service) and opens the notebook in JupyterLab, where the panel adds the
    environment banner. Every problem is an error page; nothing is written then.
    """

    def _perm_id(self, perm_id: str) -> str:
        if not contract.PERM_ID.match(perm_id):
            shown = repr(perm_id[:80]) + ("…" if len(perm_id) > 80 else "")
            raise http_error(
                400, f"{shown} is not an openBIS dataset permId (like 20240115093000000-4): "
                "check the link.",
            )  # fmt: skip
        return perm_id

    @web.authenticated
    async def get(self, perm_id):
        page = self.settings["jinja2_env"].from_string(REOPEN_PAGE)
        html = await page.render_async(
            **self.template_namespace, perm_id=self._perm_id(perm_id), action=self.request.uri
        )
        self.finish(html)

    @web.authenticated
    async def post(self, perm_id):
        perm_id = self._perm_id(perm_id)
        user = self.current_user
        spawner = await self.ensure_server(user)
        # the newest openBIS token, also when the server has just started
        await handover.send_token(user)
        body = json.dumps({"permId": perm_id}).encode()
        try:
            answer = await self.post_to_server(
                spawner, contract.REOPEN_PATH, body, timeout=REOPEN_TIMEOUT
            )
        except handover.ServerRefused as e:
            if e.code == 404 and not e.reason:  # no such endpoint: a server from before
                raise http_error(503, OUTDATED_FOR_REOPEN) from e
            if e.code == 401:  # the openBIS session expired: the hint says where to renew it
                link = escape(self.authenticator.eln_url, quote=True)
                self.extra_error_html = f"<p><a href='{link}'>Open the openBIS ELN</a></p>"
            reason = e.reason or f"Your Jupyter server could not re-open it ({e.code})."
            raise http_error(e.code, reason) from e
        notebook = quote(answer["notebook"], safe="/")
        self.redirect(url_path_join(user.url, "lab", "tree", notebook))


# registered by OpenBISAuthenticator.get_handlers, below the hub's prefix
handlers = [
    (ENDPOINT_PATH, ELNNotebookHandler),
    (ENDPOINT_PATH + r"/t/(.+)", NotebookTemplateHandler),
    (ENDPOINT_PATH + r"/open/(.*)", ReopenAnalysisHandler),
]
