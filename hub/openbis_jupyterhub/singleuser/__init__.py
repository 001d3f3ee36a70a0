"""Jupyter server extension inside each user's server: where the hub hands things over.

- ``PUT {base_url}openbis/token``: the hub pushes the user's openBIS session token when the
  server is ready and a newer one after every sign-in; it goes into ``~/.pybis/<host>.token``
  (mode 0600), where pyBIS's ``Openbis()`` finds it. No token is ever in the environment.
- ``POST {base_url}openbis/notebooks?folder=&filename=&test=``: the hub's ELN endpoint
  has the server write a notebook into its own home, under the first free name, never
  overwriting a file (exclusive create). Writing from inside the server means no host
  path is shared between hub and user containers (works on Swarm and Kubernetes too).
  The notebook's kernel (its ``metadata.kernelspec.name``) starts at once in a session for
  its path (``sessions.py``), which the page joins when the browser follows the ELN's link.

Every notebook the server saves carries the environment it was saved in
(``metadata.openbis.environment``: image label and id, Python, R, Octave and their packages;
``lab_api.record_environment``), so an analysis the ELN's own cells upload has it too.

Both endpoints answer only the hub: JupyterHub's own authentication of this server checks
the request's token with the hub, and the handlers accept only the hand-over service's
identity. Paths, names and that identity are the contract in ``openbis_jupyterhub.contract``;
the rest of this package (``session_hint``, ``data_cli``, ``fast_bash_kernel``) runs in the
user's kernels and terminals.
"""

import json
import os
import tempfile
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .. import contract
from ..validator import check_folder, check_notebook_filename, numbered_names
from . import lab_api


def save_token(openbis_url: str, token: str, home: Path | None = None) -> Path:
    """Atomically replace the saved token; only the owner can read it."""
    path = contract.token_path(openbis_url, home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".token-")  # created 0600
    with os.fdopen(fd, "w") as f:
        f.write(token)  # no newline: pyBIS uses the file's text as it is
    os.replace(tmp, path)
    return path


class _HubOnlyHandler(APIHandler):
    """Accepts requests from the hub's hand-over service, nothing else."""

    async def prepare(self):
        await super().prepare()
        # the server's identity provider (JupyterHub's) has asked the hub whose token this is
        if not contract.is_handover(getattr(self.current_user, "hub_user", None)):
            raise web.HTTPError(403)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        reason = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else None
        self.finish({"reason": reason or self._reason})


class TokenHandler(_HubOnlyHandler):
    def initialize(self, openbis_url: str):
        self.openbis_url = openbis_url

    def put(self):
        try:
            token = json.loads(self.request.body)["token"]
        except (ValueError, KeyError, TypeError) as e:
            raise web.HTTPError(400, "body must be JSON {'token': …}") from e
        save_token(self.openbis_url, token)
        self.set_status(204)


class NotebookHandler(_HubOnlyHandler):
    def initialize(self, root_dir: str):
        self.root = Path(root_dir).resolve()

    def post(self):
        try:
            folder = check_folder(self.get_query_argument("folder"))
            filename = check_notebook_filename(self.get_query_argument("filename"))
        except ValueError as e:
            raise web.HTTPError(400, str(e)) from e
        directory = self.root.joinpath(*folder)
        test = self.get_query_argument("test", "false").lower() == "true"
        if test:
            name = next(n for n in numbered_names(filename) if not (directory / n).exists())
        else:
            name = self._write_new(directory, filename, self.request.body)
        path = "/".join([*folder, name])
        self.finish({"fileName": name, "path": path})
        # the image's session manager (sessions.py) starts the notebook's kernel now
        start = getattr(self.session_manager, "start_for_notebook", None)
        kernel = None if test else kernel_name(self.request.body)
        if start and kernel in self.kernel_spec_manager.find_kernel_specs():
            start(path, kernel)

    def _write_new(self, directory: Path, filename: str, content: bytes) -> str:
        # checked before mkdir: a symbolic link in the folder must not create folders elsewhere
        if not directory.resolve().is_relative_to(self.root):
            raise web.HTTPError(400, "The folder leads outside your home.")
        directory.mkdir(parents=True, exist_ok=True)
        for name in numbered_names(filename):
            try:
                fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            return name
        raise web.HTTPError(409, f"No free file name left for {filename!r}.")


def kernel_name(notebook: bytes) -> str | None:
    """The kernel a notebook asks for (``metadata.kernelspec.name``), if it names one."""
    try:
        name = json.loads(notebook)["metadata"]["kernelspec"]["name"]
    except (ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _jupyter_server_extension_points():
    return [{"module": "openbis_jupyterhub.singleuser"}]


def _load_jupyter_server_extension(serverapp):
    openbis_url = os.environ.get(contract.ENV_OPENBIS_URL, "")
    serverapp.web_app.add_handlers(".*$", lab_api.handlers(serverapp.base_url))  # the lab panel
    # every notebook saved records the environment it was saved in (its metadata)
    serverapp.contents_manager.register_pre_save_hook(lab_api.record_environment)
    base = serverapp.base_url
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (
                url_path_join(base, contract.TOKEN_PATH),
                TokenHandler,
                {"openbis_url": openbis_url},
            ),
            (
                url_path_join(base, contract.NOTEBOOKS_PATH),
                NotebookHandler,
                {"root_dir": serverapp.root_dir},
            ),
        ],
    )
