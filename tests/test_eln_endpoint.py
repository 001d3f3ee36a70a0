"""The ELN notebook endpoint /hub/openbis-notebook and the notebook-template protocol, against
a real hub (configurable-http-proxy, local-process spawner) and the openBIS double.

The ELN is a client we cannot change (openBIS ELN-LIMS, ``js/util/JupyterUtil.js``): "New
Jupyter Notebook" sends ``POST {endpoint}?token=T&folder=D&filename=N.ipynb&test=True`` with the
body ``TEST``, then the same with ``test=False`` and the notebook, both through jQuery's
``$.ajax`` (``crossDomain``, no content type: form-encoded, a simple CORS request), folder and
file name unencoded in the query; it then opens ``hub/login?token=T&next=/user/{userId}/…``.
Its requests are replayed byte for byte (``tests/support/eln.py``), and its jQuery code runs in
headless Chromium.
"""

import http.client
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from html import unescape
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import nbformat
import pytest
import requests
from openbis_jupyterhub.singleuser.session_hint import HINT

from tests.support.eln import ENDPOINT, FORM, eln_notebook, eln_post
from tests.support.hubprocess import REPO_ROOT, JupyterHubProcess
from tests.support.processes import free_port

JQUERY = Path(sys.prefix) / "share/jupyterhub/static/components/jquery/dist/jquery.min.js"
SAMPLE_DATASET = {
    "permId": {"permId": "20240115093000000-4"},
    "experiment": {"permId": {"permId": "20240115093000000-2"}},
}
OWNER = {"@type": "as.dto.experiment.Experiment", "identifier": {"identifier": "/LAB/PROJ/EXP1"}}

# The ELN's "New Jupyter Notebook" (JupyterUtil.js), with the real jQuery: names go into the
# URL unencoded, both POSTs are "simple" CORS requests, errors become an alert text.
ELN_PAGE = """<!doctype html><html><head><title>ELN</title>
<script src="/jquery.min.js"></script>
<script>
window.elnNewNotebook = function (endpoint, jupyterEndpoint, token, userId, folder, name, nb) {
  return new Promise(function (resolve) {
    var url = endpoint + "?token=" + token + "&folder=" + folder + "&filename=" + name + ".ipynb";
    var fail = function (r) { resolve({alert: "error: " + JSON.stringify(r)}); };
    $.ajax({url: url + "&test=True", type: "POST", crossDomain: true, data: "TEST",
      error: fail,
      success: function (test) {
        var notebook = JSON.stringify(nb).split("__FILE_NAME__").join(test.fileName);
        $.ajax({url: url + "&test=False", type: "POST", crossDomain: true, data: notebook,
          error: fail,
          success: function (written) {
            resolve({test: test, written: written, notebook: notebook,
              next: jupyterEndpoint + "hub/login?token=" + token + "&next=" +
                encodeURIComponent("/user/" + userId + "/notebooks/" + folder + "/" +
                                   written.fileName)});
          }});
      }});
  });
};
</script></head><body>ELN</body></html>"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/jquery.min.js":
            body, kind = JQUERY.read_bytes(), "text/javascript"
        else:
            body, kind = ELN_PAGE.encode(), "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_page():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _PageHandler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    ).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def pages():
    """Two copies of the ELN page: one from the configured ELN origin, one from elsewhere."""
    eln, eln_origin = serve_page()
    foreign, foreign_origin = serve_page()
    yield {"eln": eln_origin, "foreign": foreign_origin}
    eln.shutdown()
    foreign.shutdown()


@pytest.fixture(scope="module")
def templates_dir(tmp_path_factory):
    """The repository's templates, plus one whose file name has a placeholder."""
    folder = tmp_path_factory.mktemp("templates")
    for template in (REPO_ROOT / "notebook_templates").glob("*.ipynb"):
        (folder / template.name).write_bytes(template.read_bytes())
    notebook = nbformat.read(REPO_ROOT / "notebook_templates/analysis_python3.ipynb", as_version=4)
    notebook.metadata["openbis"] = {"filename": "{measurement_name} analysis.ipynb"}
    (folder / "named").mkdir()
    nbformat.write(notebook, folder / "named/measurement.ipynb")
    (folder / "secret.ipynb.txt").write_text("not a template")
    # a notebook next to the folder, and a link to it inside: neither is a template
    nbformat.write(notebook, folder.parent / "outside.ipynb")
    (folder / "link.ipynb").symlink_to(folder.parent / "outside.ipynb")
    return folder


@pytest.fixture(scope="module")
def hub(hub_factory, pages, templates_dir):
    """Our hub (config unchanged) with the ELN page's origin allowed and test templates."""
    return hub_factory(
        OPENBIS_ELN_ORIGINS=pages["eln"], OPENBIS_NOTEBOOK_TEMPLATES=str(templates_dir)
    )


@pytest.fixture(scope="module")
def jdoe(hub, openbis_double):
    """A JDoe session whose server is running (started by a first ELN request)."""
    token = openbis_double.control.login("JDoe", "jdoe-password")
    status, _, _ = eln_post(hub, token, "warm-up", "first.ipynb", "True", b"TEST")
    assert status == 200
    return token


def notebook_bytes(file_name):
    return json.dumps(eln_notebook([SAMPLE_DATASET], OWNER, file_name)).encode()


def visible_files(home: Path) -> dict:
    """What the user sees in their home: path -> bytes (hidden folders left out)."""
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in home.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(home).parts)
    }


def follow(session, url):
    """GET ``url`` following redirects by hand; returns the last response."""
    for _ in range(10):
        response = session.get(url, allow_redirects=False, timeout=60)
        if response.status_code not in (301, 302, 303, 307):
            return response
        url = requests.compat.urljoin(url, response.headers["Location"])
    raise AssertionError("too many redirects")


# --- the ELN's sequence ---------------------------------------------------------------------


def test_eln_sequence_creates_user_starts_server_and_writes(hub, openbis_double, pages):
    token = openbis_double.control.login("alice", "alice-password")
    assert hub.api("/users/alice").status_code == 404  # the hub has never seen alice

    status, headers, answer = eln_post(
        hub, token, "my analyses", "first run", "True", b"TEST", origin=pages["eln"]
    )
    # the ELN sends "first run" without .ipynb only when broken; it appends it itself
    assert status == 400 and "ipynb" in answer["reason"]

    status, headers, answer = eln_post(
        hub, token, "my analyses", "first run.ipynb", "True", b"TEST", origin=pages["eln"]
    )
    assert status == 200, answer
    assert answer == {"fileName": "first run.ipynb", "path": "my analyses/first run.ipynb"}
    assert headers["Access-Control-Allow-Origin"] == pages["eln"]
    assert "Origin" in headers["Vary"]
    assert headers["Content-Type"].startswith("application/json")
    # the user exists now and the server was started before the answer: the next link is warm
    model = hub.api("/users/alice").json()
    assert model["servers"][""]["ready"]
    assert not (hub.homes / "alice" / "my analyses" / "first run.ipynb").exists()

    body = notebook_bytes(answer["fileName"])
    status, headers, written = eln_post(
        hub, token, "my analyses", "first run.ipynb", "False", body, origin=pages["eln"]
    )
    assert status == 200, written
    assert written == answer
    path = hub.homes / "alice" / "my analyses" / "first run.ipynb"
    assert path.read_bytes() == body  # byte for byte what the ELN sent
    assert path.stat().st_mode & 0o077 == 0  # not readable by others

    # the ELN opens the hub login with next=/user/{userId}/notebooks/{dir}/{fileName}
    next_path = quote(f"/user/alice/notebooks/my analyses/{written['fileName']}", safe="")
    session = requests.Session()
    page = follow(session, f"{hub.url}/hub/login?token={token}&next={next_path}")
    assert page.status_code == 200
    assert urlsplit(page.url).path == "/user/alice/notebooks/my%20analyses/first%20run.ipynb"
    contents = session.get(
        f"{hub.url}/user/alice/api/contents/my%20analyses/first%20run.ipynb", timeout=30
    ).json()
    assert contents["content"]["metadata"]["autogenerated_by_openbis"] is True


def test_stopped_server_is_started_once_for_two_requests_at_once(hub, openbis_double):
    token = openbis_double.control.login("alice", "alice-password")
    eln_post(hub, token, "f", "n.ipynb", "True", b"TEST")  # alice exists
    assert hub.api("/users/alice/server", method="DELETE").status_code in (202, 204)
    for _ in range(100):  # bounded: the stop takes a few seconds
        if not hub.api("/users/alice").json()["servers"]:
            break
        time.sleep(0.2)
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(eln_post(hub, token, "f", "n.ipynb", "True", b"TEST"))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert [status for status, _, _ in results] == [200, 200]
    assert hub.api("/users/alice").json()["servers"][""]["ready"]


def test_a_newer_token_reaches_the_running_server(hub, jdoe, openbis_double):
    token = openbis_double.control.login("JDoe", "jdoe-password")
    assert token != jdoe
    status, _, _ = eln_post(hub, token, "f", "n.ipynb", "True", b"TEST")
    assert status == 200
    # where pyBIS in the user's kernels reads it
    assert (hub.homes / "JDoe" / ".pybis" / "127.0.0.1.token").read_text() == token


def test_a_link_in_the_home_cannot_lead_the_write_outside(hub, jdoe, tmp_path):
    (hub.homes / "JDoe" / "elsewhere").symlink_to(tmp_path)
    status, _, answer = eln_post(
        hub, jdoe, "elsewhere/sub", "n.ipynb", "False", notebook_bytes("n.ipynb")
    )
    assert status == 400 and "outside your home" in answer["reason"]
    assert list(tmp_path.iterdir()) == []


def test_taken_names_get_the_next_number_and_nothing_is_overwritten(hub, jdoe):
    folder = hub.homes / "JDoe" / "numbered"
    folder.mkdir()
    (folder / "report.ipynb").write_text("mine")
    status, _, answer = eln_post(hub, jdoe, "numbered", "report.ipynb", "True", b"TEST")
    assert (status, answer["fileName"]) == (200, "report 2.ipynb")
    status, _, answer = eln_post(
        hub, jdoe, "numbered", "report.ipynb", "False", notebook_bytes("report 2.ipynb")
    )
    assert (status, answer["fileName"]) == (200, "report 2.ipynb")
    status, _, answer = eln_post(
        hub, jdoe, "numbered", "report.ipynb", "False", notebook_bytes("report 3.ipynb")
    )
    assert answer == {"fileName": "report 3.ipynb", "path": "numbered/report 3.ipynb"}
    assert (folder / "report.ipynb").read_text() == "mine"


def test_names_are_taken_literally_as_the_eln_sends_them(hub, jdoe):
    # the ELN does not encode names: a "+" stays a "+" (form decoding would make it a space)
    status, _, answer = eln_post(hub, jdoe, "C+H", "Ca+ 50%.ipynb", "False", notebook_bytes("x"))
    assert status == 200, answer
    assert answer == {"fileName": "Ca+ 50%.ipynb", "path": "C+H/Ca+ 50%.ipynb"}
    assert (hub.homes / "JDoe" / "C+H" / "Ca+ 50%.ipynb").is_file()
    # non-ASCII names arrive as UTF-8 percent escapes from the browser
    status, _, answer = eln_post(
        hub, jdoe, "Messungen", "Größe µm.ipynb", "False", notebook_bytes("x")
    )
    assert answer["fileName"] == "Größe µm.ipynb"


def test_two_writes_of_one_name_at_once_both_succeed_under_different_names(hub, jdoe):
    folder = hub.homes / "JDoe" / "race"
    folder.mkdir()
    (folder / "same.ipynb").write_text("original")
    barrier = threading.Barrier(2)
    results = []

    def write(i):
        body = notebook_bytes(f"writer {i}")
        barrier.wait(timeout=30)
        results.append((eln_post(hub, jdoe, "race", "same.ipynb", "False", body), body))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    names = {answer["fileName"] for (status, _, answer), _ in results if status == 200}
    assert names == {"same 2.ipynb", "same 3.ipynb"}
    for (_, _, answer), body in results:
        assert (folder / answer["fileName"]).read_bytes() == body
    assert (folder / "same.ipynb").read_text() == "original"


# --- errors: a clear JSON reason, and nothing written ---------------------------------------

NOTEBOOK = notebook_bytes("bad.ipynb")
BAD_REQUESTS = {
    # name: (query with {token}, body, status, words in the reason)
    "no token": ("folder=f&filename=n.ipynb&test=False", NOTEBOOK, 401, "token"),
    "unknown token": (
        "token=JDoe-0xDEAD&folder=f&filename=n.ipynb&test=False",
        NOTEBOOK,
        401,
        "not valid",
    ),
    "no folder": ("token={token}&filename=n.ipynb&test=False", NOTEBOOK, 400, "folder"),
    "no filename": ("token={token}&folder=f&test=False", NOTEBOOK, 400, "filename"),
    "no test": ("token={token}&folder=f&filename=n.ipynb", NOTEBOOK, 400, "test"),
    "folder ..": ("token={token}&folder=..&filename=n.ipynb&test=False", NOTEBOOK, 400, "dot"),
    "folder a/../..": (
        "token={token}&folder=a/../..&filename=n.ipynb&test=False",
        NOTEBOOK,
        400,
        "dot",
    ),
    "absolute folder": (
        "token={token}&folder=/etc&filename=n.ipynb&test=False",
        NOTEBOOK,
        400,
        "absolute",
    ),
    "backslash": (
        "token={token}&folder=a\\..\\b&filename=n.ipynb&test=False",
        NOTEBOOK,
        400,
        "backslash",
    ),
    "NUL": ("token={token}&folder=f&filename=n%00.ipynb&test=False", NOTEBOOK, 400, "control"),
    "newline": ("token={token}&folder=f%0Ag&filename=n.ipynb&test=False", NOTEBOOK, 400, "control"),
    "hidden file": ("token={token}&folder=f&filename=.n.ipynb&test=False", NOTEBOOK, 400, "dot"),
    "hidden folder": (
        "token={token}&folder=.ssh&filename=n.ipynb&test=False",
        NOTEBOOK,
        400,
        "dot",
    ),
    "long name": (
        "token={token}&folder=f&filename=" + "é" * 126 + ".ipynb&test=False",
        NOTEBOOK,
        400,
        "255",
    ),
    "not .ipynb": ("token={token}&folder=f&filename=n.py&test=False", NOTEBOOK, 400, ".ipynb"),
    "percent in a bad name": (
        "token={token}&folder=f&filename=100%.py&test=False",
        NOTEBOOK,
        400,
        "'100%.py' does not end in .ipynb",
    ),
    "slash in name": (
        "token={token}&folder=f&filename=a/n.ipynb&test=False",
        NOTEBOOK,
        400,
        "slash",
    ),
    "body not JSON": ("token={token}&folder=f&filename=n.ipynb&test=False", b"TEST", 400, "JSON"),
    "body v3": (
        "token={token}&folder=f&filename=n.ipynb&test=False",
        b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}',
        400,
        "v4",
    ),
    "body invalid v4": (
        "token={token}&folder=f&filename=n.ipynb&test=False",
        b'{"nbformat": 4, "nbformat_minor": 2, "metadata": {}, "cells": "x"}',
        400,
        "valid",
    ),
    "body over 20 MB": (
        "token={token}&folder=f&filename=n.ipynb&test=False",
        b"{" + b" " * (20 * 1024 * 1024) + b"}",
        413,
        "larger",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_a_json_reason_and_write_nothing(hub, jdoe, pages, case):
    query, body, status, words = BAD_REQUESTS[case]
    before = visible_files(hub.homes / "JDoe")
    got, headers, answer = eln_post(
        hub, jdoe, None, None, None, body, origin=pages["eln"], raw_query=query.format(token=jdoe)
    )
    assert got == status, answer
    assert set(answer) == {"reason"} and words.lower() in answer["reason"].lower()
    # the ELN page can read the reason (it shows it in its alert)
    assert headers["Access-Control-Allow-Origin"] == pages["eln"]
    assert visible_files(hub.homes / "JDoe") == before
    assert jdoe not in hub.log_text()  # the token never reaches a log


def test_expired_token_is_refused(hub, openbis_double):
    token = openbis_double.control.login("JDoe", "jdoe-password")
    openbis_double.control.expire(token=token)
    status, _, answer = eln_post(hub, token, "f", "n.ipynb", "True", b"TEST")
    assert status == 401 and "not valid" in answer["reason"]


def test_a_hub_cookie_is_no_credential_and_no_xsrf_is_needed(hub, jdoe, openbis_double):
    # a browser signed in to the hub as JDoe, posting without a token: refused
    session = requests.Session()
    follow(session, f"{hub.url}/hub/login?token={jdoe}")
    assert session.cookies
    answer = session.post(
        f"{hub.url}{ENDPOINT}?folder=f&filename=n.ipynb&test=True", data=b"TEST", timeout=30
    )
    assert answer.status_code == 401
    # the same cookie with alice's token: the token decides, and no _xsrf is asked for
    alice = openbis_double.control.login("alice", "alice-password")
    answer = session.post(
        f"{hub.url}{ENDPOINT}?token={alice}&folder=cookie&filename=n.ipynb&test=False",
        data=notebook_bytes("n.ipynb"),
        headers={"Content-Type": FORM},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert (hub.homes / "alice" / "cookie" / "n.ipynb").is_file()
    assert not (hub.homes / "JDoe" / "cookie").exists()


def test_cors_preflight_and_foreign_origins(hub, jdoe, pages):
    url = f"{hub.url}{ENDPOINT}?token={jdoe}&folder=f&filename=n.ipynb&test=True"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = requests.options(url, headers={"Origin": pages["eln"], **preflight}, timeout=30)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == pages["eln"]
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "content-type" in allowed.headers["Access-Control-Allow-Headers"]
    foreign = requests.options(url, headers={"Origin": pages["foreign"], **preflight}, timeout=30)
    assert "Access-Control-Allow-Origin" not in foreign.headers
    _, headers, _ = eln_post(hub, jdoe, "f", "n.ipynb", "True", b"TEST", origin=pages["foreign"])
    assert "Access-Control-Allow-Origin" not in headers
    assert "Origin" in headers["Vary"]


def test_default_origin_is_openbis_and_users_not_allowed_are_refused(tmp_path, openbis_double):
    hub = JupyterHubProcess(
        tmp_path, openbis_double.url, openbis_double.ca_file, JUPYTERHUB_ALLOWED_USERS="JDoe"
    ).start()
    try:
        token = openbis_double.control.login("admin", "admin-password")
        status, headers, answer = eln_post(
            hub, token, "f", "n.ipynb", "True", b"TEST", origin=openbis_double.url
        )
        assert status == 403 and "admin may not use" in answer["reason"]
        assert headers["Access-Control-Allow-Origin"] == openbis_double.url
        assert hub.api("/users/admin").status_code == 404
    finally:
        hub.stop()


def test_unreachable_openbis_is_503(tmp_path, pages):
    # nothing listens on this port: openBIS is "down"
    hub = JupyterHubProcess(
        tmp_path, f"https://127.0.0.1:{free_port()}", "", OPENBIS_ELN_ORIGINS=pages["eln"]
    ).start()
    try:
        status, headers, answer = eln_post(
            hub,
            "JDoe-231123145936123xA3D0",
            "f",
            "n.ipynb",
            "True",
            b"TEST",
            origin=pages["eln"],
        )
        assert status == 503 and "did not answer" in answer["reason"]
        assert headers["Access-Control-Allow-Origin"] == pages["eln"]
        assert "231123145936123xA3D0" not in hub.log_text()
    finally:
        hub.stop()


# --- a real browser: what the ELN page can and cannot see ----------------------------------


def run_eln_in_browser(browser, origin, hub, token, user, folder, name):
    page = browser.new_page()
    try:
        page.goto(origin + "/")
        notebook = eln_notebook([SAMPLE_DATASET], OWNER, "__FILE_NAME__")
        return page.evaluate(
            "a => elnNewNotebook(a.endpoint, a.jupyter, a.token, a.user, a.folder, a.name, a.nb)",
            {
                "endpoint": hub.url + ENDPOINT,
                "jupyter": hub.url + "/",
                "token": token,
                "user": user,
                "folder": folder,
                "name": name,
                "nb": notebook,
            },
        )
    finally:
        page.close()


@pytest.mark.browser
def test_eln_page_runs_the_sequence_in_chromium(hub, jdoe, pages, browser):
    outcome = run_eln_in_browser(
        browser, pages["eln"], hub, jdoe, "JDoe", "browser runs", "from the ELN"
    )
    assert "alert" not in outcome, outcome
    assert outcome["test"] == {
        "fileName": "from the ELN.ipynb",
        "path": "browser runs/from the ELN.ipynb",
    }
    assert outcome["written"] == outcome["test"]
    path = hub.homes / "JDoe" / "browser runs" / "from the ELN.ipynb"
    assert path.read_text() == outcome["notebook"]
    assert "fileName='from the ELN.ipynb'" in path.read_text()
    # the link the ELN opens lands on the notebook
    page = browser.new_page()
    try:
        page.goto(outcome["next"])
        page.wait_for_url(
            re.compile(r".*/user/JDoe/notebooks/browser%20runs/from%20the%20ELN"), timeout=30000
        )
    finally:
        page.close()


@pytest.mark.browser
def test_eln_page_reads_error_reasons_in_chromium(hub, pages, browser):
    outcome = run_eln_in_browser(browser, pages["eln"], hub, "JDoe-expired", "JDoe", "f", "n")
    alert = json.loads(outcome["alert"].removeprefix("error: "))
    assert alert["status"] == 401
    assert "not valid" in alert["responseJSON"]["reason"]


@pytest.mark.browser
def test_foreign_page_cannot_read_answers_in_chromium(hub, jdoe, pages, browser):
    outcome = run_eln_in_browser(browser, pages["foreign"], hub, jdoe, "JDoe", "foreign", "n")
    alert = json.loads(outcome["alert"].removeprefix("error: "))
    # the browser hides the answer: no status, no text, no JSON
    assert alert == {"readyState": 0, "status": 0, "statusText": "error"}


# --- the notebook-template protocol ---------------------------------------------------------

INJECTED = Path("/tmp/eln-endpoint-test-injected")
TRICKY = f"He said \"hi\" and 'bye'\nline two\\n $(touch {INJECTED}) `id` \x07 end"
PARAMS = {
    "ownerId": "/LAB/PROJ/EXP1",
    "resultDatasetNotes": TRICKY,
    "resultDatasetName": "<script>alert(1)</script>",
    "datasetPermIds": ["20240115093000000-4", "20240115093000000-5"],
    "runs": 3,
}


def signed_in_session(hub, token):
    session = requests.Session()
    follow(session, f"{hub.url}/hub/login?token={token}")
    return session


def template_url(hub, path, params):
    return f"{hub.url}{ENDPOINT}/t/{path}?" + urlencode({"params": json.dumps(params)})


def create_from_template(session, hub, path, params):
    """Open the confirmation page, then confirm; returns (page, response to confirm)."""
    url = template_url(hub, path, params)
    page = session.get(url, timeout=60)
    assert page.status_code == 200, page.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    confirmed = session.post(url, data={"_xsrf": xsrf}, allow_redirects=False, timeout=120)
    return page, confirmed


def injected_cell(path):
    notebook = nbformat.read(path, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    index = next(i for i, t in enumerate(tags) if "injected-parameters" in t)
    assert "parameters" in tags[index - 1]  # right after the template's defaults
    assert sum("injected-parameters" in t for t in tags) == 1
    return notebook.cells[index].source


def test_template_needs_sign_in(hub):
    response = requests.get(
        template_url(hub, "analysis_python3.ipynb", {}), timeout=30, allow_redirects=False
    )
    assert response.status_code == 302 and "/hub/login" in response.headers["Location"]


def test_template_python_confirm_write_and_parameters_are_data(hub, jdoe):
    session = signed_in_session(hub, jdoe)
    page, confirmed = create_from_template(session, hub, "analysis_python3.ipynb", PARAMS)
    assert "analysis_python3.ipynb" in page.text
    assert "$(touch" in page.text and "&lt;script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert confirmed.status_code == 302
    assert confirmed.headers["Location"] == "/user/JDoe/notebooks/analysis_python3.ipynb"
    source = injected_cell(hub.homes / "JDoe" / "analysis_python3.ipynb")
    namespace = {}
    exec(compile(source, "injected", "exec"), {"__builtins__": {}}, namespace)  # noqa: S102
    assert namespace == PARAMS

    # a second time: a new name, the first notebook stays
    _, again = create_from_template(session, hub, "analysis_python3.ipynb", {"runs": 4})
    assert again.headers["Location"] == "/user/JDoe/notebooks/analysis_python3%202.ipynb"
    assert "runs = 3" in injected_cell(hub.homes / "JDoe" / "analysis_python3.ipynb")


def test_template_bash_parameters_are_data(hub, jdoe):
    session = signed_in_session(hub, jdoe)
    _, confirmed = create_from_template(session, hub, "analysis_bash.ipynb", PARAMS)
    assert confirmed.status_code == 302
    source = injected_cell(hub.homes / "JDoe" / "analysis_bash.ipynb")
    script = source + '\nprintf "%s\\0" "$ownerId" "$resultDatasetNotes" "${datasetPermIds[@]}"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30, check=True)
    assert out.stdout.split(b"\0")[:-1] == [
        PARAMS["ownerId"].encode(),
        TRICKY.encode(),
        *(p.encode() for p in PARAMS["datasetPermIds"]),
    ]
    assert not INJECTED.exists()


# Prints the string as hex (every byte visible), then the vector's class, items and a sum.
READ_BACK = {
    "analysis_r.ipynb": (
        ["Rscript", "-"],
        'cat(paste(as.character(charToRaw(resultDatasetNotes)), collapse=""), "\\n", sep="")\n'
        'cat(class(datasetPermIds), datasetPermIds, runs * 2, sep="\\n")\n',
        "character",
    ),
    "analysis_octave.ipynb": (
        ["octave-cli", "-q"],
        'printf("%s\\n", sprintf("%02x", double(resultDatasetNotes)));\n'
        'printf("%s\\n", class(datasetPermIds), datasetPermIds{:});\n'
        'printf("%d\\n", runs * 2);\n',
        "cell",
    ),
}


@pytest.mark.docker
@pytest.mark.parametrize("template", list(READ_BACK))
def test_template_r_and_octave_parameters_are_data(hub, jdoe, singleuser_image, template):
    session = signed_in_session(hub, jdoe)
    _, confirmed = create_from_template(session, hub, template, PARAMS)
    assert confirmed.status_code == 302
    source = injected_cell(hub.homes / "JDoe" / template)
    command, read_back, vector_class = READ_BACK[template]
    # the language's own interpreter, from the single-user image, without network
    out = subprocess.run(
        ["docker", "run", "--rm", "-i", "--network", "none", singleuser_image, *command],
        input=(source + "\n" + read_back).encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    lines = out.stdout.decode().split("\n")
    assert lines[:5] == [TRICKY.encode().hex(), vector_class, *PARAMS["datasetPermIds"], "6"]


def test_template_file_name_placeholder(hub, jdoe):
    session = signed_in_session(hub, jdoe)
    _, confirmed = create_from_template(
        session, hub, "named/measurement.ipynb", {"measurement_name": "XRD 2024-01"}
    )
    assert confirmed.headers["Location"] == "/user/JDoe/notebooks/XRD%202024-01%20analysis.ipynb"
    assert (hub.homes / "JDoe" / "XRD 2024-01 analysis.ipynb").is_file()
    # a placeholder value that would leave the home is refused
    page = session.get(
        template_url(hub, "named/measurement.ipynb", {"measurement_name": "../../x"}), timeout=30
    )
    assert page.status_code == 400 and "slash" in page.text


@pytest.mark.parametrize(
    "path",
    [
        "nothing.ipynb",
        "secret.ipynb.txt",
        "..%2Foutside.ipynb",
        "link.ipynb",
        "..%2F..%2Fpyproject.toml",
        "%2Fetc%2Fpasswd",
        "x%00.ipynb",
    ],
)
def test_unknown_templates_and_paths_outside_get_an_error_page(hub, jdoe, path):
    session = signed_in_session(hub, jdoe)
    page = session.get(f"{hub.url}{ENDPOINT}/t/{path}?params=%7B%7D", timeout=30)
    assert page.status_code == 404
    assert "There is no notebook template" in page.text


def test_template_post_needs_xsrf(hub, jdoe):
    session = signed_in_session(hub, jdoe)
    before = visible_files(hub.homes / "JDoe")
    response = session.post(
        template_url(hub, "analysis_python3.ipynb", {}), timeout=30, allow_redirects=False
    )
    assert response.status_code == 403
    assert visible_files(hub.homes / "JDoe") == before


def test_template_bad_parameters(hub, jdoe):
    session = signed_in_session(hub, jdoe)
    for params, words in [
        ("[1]", "JSON object"),
        ('{"a b": 1}', "identifier"),
        ('{"class": 1}', "reserved"),
        ("{", "not valid JSON"),
    ]:
        url = f"{hub.url}{ENDPOINT}/t/analysis_python3.ipynb?" + urlencode({"params": params})
        page = session.get(url, timeout=30)
        assert page.status_code == 400 and words in page.text, params


# --- the re-run link: /hub/openbis-notebook/open/<dataset permId> -----------------------------

ANALYSIS_CELLS = ["answer = 6 * 7", "print(f'answer {answer}')"]
UNKNOWN_DATASET = "20240115093000000-999"


def save_analysis(hub, folder):
    """An ANALYSIS_NOTEBOOK dataset saved from JDoe's home through the panel's API."""
    home = hub.homes / "JDoe"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in ANALYSIS_CELLS]
    (home / folder).mkdir()
    nbformat.write(notebook, home / folder / "analysis.ipynb")
    answer = requests.post(
        f"{hub.url}/user/JDoe/openbis/api/datasets",
        headers={"Authorization": f"token {hub.api_token}"},
        json={
            "notebook": f"{folder}/analysis.ipynb",
            "owner": {"kind": "sample", "id": "/LAB/PROJ/SAMPLE1"},
            "parents": [SAMPLE_DATASET["permId"]["permId"]],
            "html": False,
        },
        timeout=120,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["permId"]


def reopen_link(hub, perm_id):
    return f"{hub.url}{ENDPOINT}/open/{perm_id}"


def confirm_reopen(session, url):
    """The confirmation page, then its button; returns (page, answer to the button)."""
    page = session.get(url, timeout=60)
    assert page.status_code == 200, page.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    return page, session.post(url, data={"_xsrf": xsrf}, allow_redirects=False, timeout=300)


def left_behind(home: Path) -> list:
    """Staging folders of a re-open (hidden): none may stay."""
    return [p.name for p in home.iterdir() if p.name.startswith(".openbis-reopen")]


def test_reopen_link_needs_sign_in(hub):
    url = reopen_link(hub, SAMPLE_DATASET["permId"]["permId"])
    response = requests.get(url, timeout=30, allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/hub/login?next=")
    assert quote(f"{ENDPOINT}/open/20240115093000000-4", safe="") in location


def test_reopen_link_starts_the_server_fetches_the_analysis_and_opens_it(hub, openbis_double):
    token = openbis_double.control.login("JDoe", "jdoe-password")
    session = signed_in_session(hub, token)
    hub.wait_for_server("JDoe", timeout=120)
    perm_id = save_analysis(hub, "linked")
    assert hub.api("/users/JDoe/server", method="DELETE").status_code in (202, 204)
    for _ in range(100):  # bounded: the stop takes a few seconds
        if not hub.api("/users/JDoe").json()["servers"]:
            break
        time.sleep(0.2)

    page, opened = confirm_reopen(session, reopen_link(hub, perm_id))
    assert f'id="openbis-dataset">{perm_id}<' in page.text
    assert opened.status_code == 302, opened.text
    assert opened.headers["Location"] == f"/user/JDoe/lab/tree/{perm_id}/analysis.ipynb"
    assert hub.api("/users/JDoe").json()["servers"][""]["ready"]  # started on the way
    folder = hub.homes / "JDoe" / perm_id
    notebook = nbformat.read(folder / "analysis.ipynb", as_version=4)
    assert [cell.source for cell in notebook.cells] == ANALYSIS_CELLS
    marker = json.loads((folder / ".openbis-dataset.json").read_text())
    assert marker["permId"] == perm_id and marker["type"] == "ANALYSIS_NOTEBOOK"
    assert marker["parents"] == [SAMPLE_DATASET["permId"]["permId"]]
    assert "requirements.txt" in marker["files"]
    lab = follow(session, hub.url + opened.headers["Location"])
    assert lab.status_code == 200 and "JupyterLab" in lab.text

    # again: a new folder; the first one (with the user's changes) stays as it is
    (folder / "analysis.ipynb").write_text("changed by the user")
    _, again = confirm_reopen(session, reopen_link(hub, perm_id))
    assert again.headers["Location"] == f"/user/JDoe/lab/tree/{perm_id}%202/analysis.ipynb"
    assert (folder / "analysis.ipynb").read_text() == "changed by the user"
    assert left_behind(hub.homes / "JDoe") == []
    assert token not in hub.log_text() and token not in opened.headers["Location"]


BAD_LINKS = {
    # name: (permId in the link, status, words on the page)
    "unknown permId": (UNKNOWN_DATASET, 404, f"no dataset {UNKNOWN_DATASET} that you may see"),
    "not an analysis": ("20240115093000000-4", 400, "of type RAW_DATA, not ANALYSIS_NOTEBOOK"),
    "dot dot": ("..%2F..%2Fetc%2Fpasswd", 400, "'../../etc/passwd' is not an openBIS dataset"),
    "permId and more": ("20240115093000000-4%2F..%2Fx", 400, "is not an openBIS dataset permId"),
    "NUL": ("20240115093000000-4%00", 400, "is not an openBIS dataset permId"),
    "newline": ("20240115093000000-4%0A", 400, "is not an openBIS dataset permId"),
    "empty": ("", 400, "'' is not an openBIS dataset permId"),
}


@pytest.mark.parametrize("case", [*BAD_LINKS, "expired session"])
def test_bad_reopen_links_show_a_page_that_says_why_and_write_nothing(hub, openbis_double, case):
    token = openbis_double.control.login("JDoe", "jdoe-password")
    session = signed_in_session(hub, token)
    hub.wait_for_server("JDoe", timeout=120)
    home = hub.homes / "JDoe"
    before = visible_files(home)
    if case == "expired session":
        perm_id, status, words = save_analysis(hub, f"expiring {time.time_ns()}"), 401, HINT
        before = visible_files(home)
        openbis_double.control.expire(token=token)
    else:
        perm_id, status, words = BAD_LINKS[case]
    url = reopen_link(hub, perm_id)
    if re.fullmatch(r"\d{17}-\d+", perm_id):  # openBIS says what is wrong, after the click
        _, page = confirm_reopen(session, url)
    else:  # the link itself is wrong: said at once
        page = session.get(url, timeout=60)
    assert page.status_code == status, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    assert words in unescape(page.text)
    if case == "expired session":
        assert "Open the openBIS ELN" in page.text
    assert visible_files(home) == before
    assert left_behind(home) == []
