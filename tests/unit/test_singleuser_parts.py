"""What runs in user servers, without a server: session hints, openbis-data's arguments,
the token file, Docker names of odd openBIS user ids, the launcher, kernels started ahead."""

import asyncio
import json
import ssl
import stat
import subprocess
import sys
from types import SimpleNamespace

import nbformat
import pytest
from dockerspawner.dockerspawner import DockerSpawner
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from openbis_jupyterhub import contract
from openbis_jupyterhub.singleuser import kernel_name, save_token
from openbis_jupyterhub.singleuser.data_cli import parse_args
from openbis_jupyterhub.singleuser.session_hint import is_session_expired
from openbis_jupyterhub.singleuser.sessions import OpenBISSessionManager

from openbis_double.certs import create_certificates


@pytest.mark.parametrize(
    "message",
    [
        "Session is no longer valid. Please log in again.",
        "Your session expired, please log in again",
        "Session token JDoe-1 is invalid: user is not logged in.",
        "Session no longer available",
    ],
)
def test_expired_sessions_are_recognised(message):
    assert is_session_expired(ValueError(message))


def test_other_errors_are_not_expired_sessions():
    assert not is_session_expired(ValueError("No such dataset: 20240115093000000-1"))
    assert not is_session_expired(RuntimeError("Session is no longer valid"))


def test_openbis_data_arguments():
    args = parse_args(["save", "--object", "/S/P/O1", "--parents", "A,B,", "a.ipynb"])
    assert (args.object, args.parents, args.files) == ("/S/P/O1", ["A", "B"], ["a.ipynb"])
    with pytest.raises(SystemExit):
        parse_args(["save", "--object", "X", "--experiment", "Y", "a.ipynb"])


def test_saved_token_is_private_and_replaced_whole(tmp_path):
    url = "https://openbis.example.org"
    path = save_token(url, "first", tmp_path)
    save_token(url, "second", tmp_path)
    assert path == contract.token_path(url, tmp_path)
    assert path.read_text() == "second"  # no newline: pyBIS reads the text as it is
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize(
    ("user_id", "escaped"),
    [("jdoe", "jdoe"), ("JDoe", "-4a-44oe"), ("a.b@c", "a-2eb-40c")],
)
def test_docker_names_keep_case_apart(user_id, escaped):
    # what the README promises: volumes jupyterhub-user-{escaped}, never shared by JDoe and jdoe
    assert DockerSpawner(user=None).escape(user_id) == escaped


# openbis-singleuser (launch.py), in a fresh interpreter each: what it imports is the point
LAUNCHED = """
import json, logging, sys
from unittest import mock
from openbis_jupyterhub.singleuser.launch import without_hub_code
without_hub_code()
import jupyterhub.singleuser  # what jupyterhub-singleuser imports
from jupyterhub.log import log_request
from tornado.httputil import HTTPServerRequest
from tornado.web import Application, RequestHandler
hub_only = ("sqlalchemy.orm", "alembic", "mako", "jupyterhub.handlers.base")
loaded = [name for name in hub_only if name in sys.modules]
logged = []
access = logging.getLogger("tornado.access")
access.setLevel(logging.DEBUG)
access.addFilter(lambda record: logged.append([record.levelname, record.getMessage()]))
request = HTTPServerRequest("GET", "/user/a/api/status", connection=mock.Mock())
log_request(RequestHandler(Application(), request))
from jupyterhub import orm
print(json.dumps({"loaded": loaded, "logged": logged, "users table": orm.User.__tablename__}))
"""


def test_the_user_server_runs_without_the_hub_database_layer():
    """openbis-singleuser imports jupyterhub.singleuser without the hub's handlers, SQLAlchemy's
    ORM, Alembic or Mako (about 21 MiB of each idle server); JupyterHub's request log still
    logs a user's request, and the hub's modules still load when something asks for them."""
    out = subprocess.run([sys.executable, "-c", LAUNCHED], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["loaded"] == []
    [[level, message]] = result["logged"]
    assert level == "INFO" and message.startswith("200 GET /user/a/api/status")
    assert result["users table"] == "users"


def test_the_launcher_refuses_to_come_after_jupyterhub():
    code = "import jupyterhub; from openbis_jupyterhub.singleuser import launch; launch.main()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "imported before the launcher" in out.stderr


def test_the_servers_requests_to_the_hub_share_one_tls_context(tmp_path, monkeypatch):
    """With internal TLS, the server's requests to the hub API (HubAuth: each sign-in's OAuth
    code exchange and user look-up) go out with one SSL context, made once from the server's
    certificate files, which verifies the hub's certificate against the internal CA."""
    from jupyterhub.services import auth
    from openbis_jupyterhub.singleuser import launch

    cert, key, ca = create_certificates(tmp_path, [])
    monkeypatch.setattr(auth, "make_ssl_context", auth.make_ssl_context)  # undone after the test
    launch.one_ssl_context_per_certificate()
    sent = []

    async def fetch(url, **kwargs):
        sent.append(kwargs["ssl"])

        async def text():
            return json.dumps({"name": "JDoe"})

        return SimpleNamespace(status=200, text=text)

    monkeypatch.setattr(auth, "fetch", fetch)
    hub_auth = auth.HubAuth(
        api_token="server-token",
        api_url="https://hub:8081/hub/api",
        certfile=str(cert),
        keyfile=str(key),
        client_ca=str(ca),
    )
    for token in ("first", "second"):
        assert hub_auth.user_for_token(token, use_cache=False) == {"name": "JDoe"}
    first, second = sent
    assert first is second
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    trusted = [dict(rdn[0] for rdn in c["subject"]) for c in first.get_ca_certs()]
    assert any(c.get("commonName") == "openBIS test double CA" for c in trusted)


def test_a_page_asking_while_the_notebooks_kernel_starts_joins_it(tmp_path):
    """The kernel started for an ELN notebook and the page's own request for a session (which
    jupyter_server answers with session_exists, then create_session) make one kernel."""
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    kernels = AsyncMappingKernelManager(root_dir=str(tmp_path))
    sessions = OpenBISSessionManager(
        kernel_manager=kernels, contents_manager=AsyncLargeFileManager(root_dir=str(tmp_path))
    )

    async def scenario():
        sessions.start_for_notebook("a.ipynb", "python3")
        await asyncio.sleep(0)  # the start is under way, its kernel not yet running
        assert not await sessions.list_sessions()
        exists = await sessions.session_exists("a.ipynb")  # the page's POST /api/sessions
        listed = await sessions.list_sessions()
        await kernels.shutdown_all()
        return exists, listed

    exists, listed = asyncio.run(scenario())
    assert exists
    assert [(s["path"], s["kernel"]["name"]) for s in listed] == [("a.ipynb", "python3")]


def test_kernel_name_of_a_notebook():
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "ir", "display_name": "R"}}
    )
    assert kernel_name(nbformat.writes(notebook).encode()) == "ir"
    assert kernel_name(nbformat.writes(nbformat.v4.new_notebook()).encode()) is None
    assert kernel_name(b"not json") is None
    assert kernel_name(b'{"metadata": {"kernelspec": {"name": 3}}}') is None


def test_an_analysis_recorded_before_r_and_octave_is_compared_on_python_only():
    from openbis_jupyterhub.singleuser.lab_api import compare_environments

    saved = {"python": "3.11.2", "image": "i", "packages": {"numpy": "1.26.4"}}
    current = {**saved, "r": {"version": "4.2.2", "packages": {"ggplot2": "3.4.1"}}}
    report = compare_environments(saved, current)
    assert report["added"] == [] and report["changed"] == [] and report["missing"] == []
    recorded = {**saved, "r": None}  # a notebook's record: it had no R then
    assert [a["name"] for a in compare_environments(recorded, current)["added"]] == [
        "R",
        "R ggplot2",
    ]
