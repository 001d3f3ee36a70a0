"""The openBIS authenticator in a real JupyterHub: sign-in with ELN tokens and passwords,
token hand-over to the user's running server, restarts, errors, and a real browser."""

import re
import stat
from urllib.parse import quote

import pytest
import requests

from tests.support.hubprocess import JupyterHubProcess
from tests.support.jupyter_api import KernelSession
from tests.support.processes import free_port


def eln_link(hub, token, next_path=None):
    """The URL the ELN opens: Utilities > Jupyter Workspace, or a notebook link with next."""
    url = f"{hub.url}/hub/login?token={token}"
    return url + (f"&next={quote(next_path, safe='')}" if next_path else "")


def sign_in(hub, token, next_path=None):
    """Follow the ELN link like a browser without JavaScript; returns (session, responses)."""
    session = requests.Session()
    responses = []
    url = eln_link(hub, token, next_path)
    for _ in range(10):
        r = session.get(url, allow_redirects=False, timeout=30)
        responses.append(r)
        if r.status_code not in (301, 302, 303, 307):
            break
        url = requests.compat.urljoin(url, r.headers["Location"])
    return session, responses


def token_file(hub, user):
    return hub.homes / user / ".pybis" / "127.0.0.1.token"


def test_eln_notebook_link_signs_in_spawns_and_lands_on_next(hub, openbis_double):
    token = openbis_double.control.login("JDoe", "jdoe-password")
    next_path = "/user/JDoe/lab/tree/analysis"
    session, responses = sign_in(hub, token, next_path)

    # the sign-in redirects through the spawn page; the token leaves the URL at once
    assert responses[0].status_code == 302
    for r in responses[1:]:
        assert token not in r.url
    assert all(token not in r.headers.get("Location", "") for r in responses)
    assert "/hub/spawn-pending/JDoe" in responses[-1].url

    # the hub user is the openBIS user id, case kept; the server is started
    model = hub.wait_for_server("JDoe")
    assert model["name"] == "JDoe"
    page = session.get(hub.url + next_path, timeout=30)
    assert page.status_code == 200 and "JupyterLab" in page.text


def test_token_reaches_the_server_for_pybis(hub, openbis_double):
    token = openbis_double.control.login("JDoe", "jdoe-password")
    sign_in(hub, token, "/user/JDoe/lab")
    hub.wait_for_server("JDoe")
    path = token_file(hub, "JDoe")
    assert path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    kernel = KernelSession(f"{hub.url}/user/JDoe/", hub.api_token)
    out, error = kernel.execute(
        "import os\nfrom pybis import Openbis\no = Openbis()\n"
        "print(o.get_session_info().userName, 'OPENBIS_TOKEN' in os.environ)"
    )
    kernel.shutdown()
    assert error is None, error
    assert out.split() == ["JDoe", "False"]


def test_new_eln_token_replaces_old_one_in_running_server(hub, openbis_double):
    first = openbis_double.control.login("JDoe", "jdoe-password")
    sign_in(hub, first, "/user/JDoe/lab")
    hub.wait_for_server("JDoe")
    kernel = KernelSession(f"{hub.url}/user/JDoe/", hub.api_token)
    code = "from pybis import Openbis\no = Openbis()\nprint(o.token)"
    out, error = kernel.execute(code)
    assert (out.strip(), error) == (first, None)

    # the first session ends; the ELN opens Jupyter again with a new one
    openbis_double.control.expire(token=first)
    second = openbis_double.control.login("JDoe", "jdoe-password")
    sign_in(hub, second, "/user/JDoe/lab")
    out, error = kernel.execute(code + "\nprint(o.get_session_info().userName)")
    kernel.shutdown()
    assert error is None, error
    assert out.split() == [second, "JDoe"]
    assert token_file(hub, "JDoe").read_text() == second


def test_expired_session_keeps_the_user_in_their_server(hub, openbis_double):
    token = openbis_double.control.login("alice", "alice-password")
    session, _ = sign_in(hub, token, "/user/alice/lab")
    hub.wait_for_server("alice")
    openbis_double.control.expire(token=token)
    # the notebook UI stays reachable; pyBIS says the session is gone
    assert session.get(f"{hub.url}/user/alice/lab", timeout=30).status_code == 200
    kernel = KernelSession(f"{hub.url}/user/alice/", hub.api_token)
    out, error = kernel.execute("from pybis import Openbis\no = Openbis()\nprint(o.token)")
    kernel.shutdown()
    assert out.strip() == "None"  # pyBIS ignores a dead saved token; a call then fails
    assert hub.api("/users/alice").json()["servers"][""]["ready"]


def test_personal_access_token_signs_in(hub, openbis_double):
    pat = openbis_double.control.pat("alice")
    assert pat.startswith("$pat-")
    session, responses = sign_in(hub, pat)
    assert responses[0].status_code == 302
    # without next, JupyterHub would carry the login query (and so the token) over
    secret = pat[-32:]  # the hex part, as it looks URL-encoded or not
    assert not any(secret in r.headers.get("Location", "") + r.url for r in responses[1:])
    assert session.get(f"{hub.url}/hub/api/user", timeout=10).json()["name"] == "alice"


@pytest.mark.parametrize(
    "token",
    ["admin-231123145936123xA3D0357C5DE66A5BAD647E502355FE2C", "garbage", "$pat-nobody-x"],
)
def test_invalid_token_is_refused_and_creates_no_user(hub, token):
    users_before = {u["name"] for u in hub.api("/users").json()}
    r = requests.get(eln_link(hub, token, "/user/admin/lab"), allow_redirects=False, timeout=30)
    assert r.status_code == 403
    assert "session is not valid" in r.text
    assert "openbis/webapp/eln-lims/" in r.text  # a way back to the ELN
    assert {u["name"] for u in hub.api("/users").json()} == users_before


def test_expired_token_is_refused(hub, openbis_double):
    token = openbis_double.control.login("admin", "admin-password")
    openbis_double.control.expire(token=token)
    r = requests.get(eln_link(hub, token), allow_redirects=False, timeout=30)
    assert r.status_code == 403


def test_next_that_leaves_the_hub_is_ignored(hub, openbis_double):
    token = openbis_double.control.login("admin", "admin-password")
    for evil in ("https://evil.example.org/steal", "//evil.example.org/steal"):
        _, responses = sign_in(hub, token, evil)
        locations = [r.headers.get("Location", "") for r in responses]
        assert not any("evil.example.org" in loc for loc in locations), locations


def test_password_form_signs_in_with_openbis(hub):
    session = requests.Session()
    form = session.get(f"{hub.url}/hub/login", timeout=10)
    assert form.status_code == 200 and 'name="password"' in form.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)
    data = {"username": "JDoe", "password": "wrong", "_xsrf": xsrf}
    wrong = session.post(f"{hub.url}/hub/login", data=data, allow_redirects=False, timeout=30)
    assert wrong.status_code == 403 and "Invalid username or password" in wrong.text
    data["password"] = "jdoe-password"
    right = session.post(f"{hub.url}/hub/login", data=data, allow_redirects=False, timeout=30)
    assert right.status_code == 302
    assert session.get(f"{hub.url}/hub/api/user", timeout=10).json()["name"] == "JDoe"


def test_hub_restart_keeps_every_eln_link_working(hub, openbis_double):
    known = openbis_double.control.login("JDoe", "jdoe-password")
    sign_in(hub, known, "/user/JDoe/lab")
    hub.wait_for_server("JDoe")
    hub.restart()

    # a known user with a running server: straight to the page, no Workspace step
    session, responses = sign_in(hub, openbis_double.control.login("JDoe", "jdoe-password"))
    assert responses[-1].status_code == 200
    assert responses[-1].url.startswith(f"{hub.url}/user/JDoe/")

    # a user this hub has never seen
    openbis_double.control.add_user("NewUser", "new-password")
    fresh = openbis_double.control.login("NewUser", "new-password")
    session, responses = sign_in(hub, fresh, "/user/NewUser/lab")
    assert "/hub/spawn-pending/NewUser" in responses[-1].url
    hub.wait_for_server("NewUser")
    assert session.get(f"{hub.url}/user/NewUser/lab", timeout=30).status_code == 200


def test_openbis_unreachable_is_a_503_naming_the_url(tmp_path, openbis_double):
    dead_url = f"https://127.0.0.1:{free_port()}"
    hub = JupyterHubProcess(tmp_path, dead_url, openbis_double.ca_file).start()
    try:
        r = requests.get(eln_link(hub, "admin-x"), allow_redirects=False, timeout=30)
        assert r.status_code == 503
        assert dead_url in r.text
    finally:
        hub.stop()


def test_tokens_never_reach_the_log(hub, openbis_double):
    token = openbis_double.control.login("admin", "admin-password")
    sign_in(hub, token)
    hub.wait_for_server("admin")
    # refused tokens too: tornado logs the full URL of every failed request
    dead = openbis_double.control.login("admin", "admin-password")
    openbis_double.control.expire(token=dead)
    assert requests.get(eln_link(hub, dead), timeout=30).status_code == 403
    # the proxy's error page carries the original URL inside another parameter
    nested = quote(f"/user/admin/x?token={dead}", safe="")
    requests.get(f"{hub.url}/hub/error/503?url={nested}", timeout=30)
    log = hub.log_text()
    for secret in (token, dead, dead[-32:], "admin-password"):
        assert secret not in log


def test_hub_log_has_no_deprecation_warning(hub):
    """After the journeys above (sign-ins, spawns, restarts) on this module's hub."""
    log = hub.log_text()
    assert "User logged in: JDoe" in log
    assert "deprecated" not in log.lower()


@pytest.mark.browser
def test_browser_lands_in_jupyterlab_signed_in(hub, openbis_double, browser):
    token = openbis_double.control.login("JDoe", "jdoe-password")
    page = browser.new_page()
    page.goto(eln_link(hub, token, "/user/JDoe/lab"))
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    assert page.url.startswith(f"{hub.url}/user/JDoe/lab")
    assert token not in page.url
    page.close()


def test_admin_users_and_allowed_users_come_from_the_environment(tmp_path, openbis_double):
    env = {"JUPYTERHUB_ADMIN_USERS": "JDoe", "JUPYTERHUB_ALLOWED_USERS": "JDoe,admin"}
    hub = JupyterHubProcess(tmp_path, openbis_double.url, openbis_double.ca_file, **env).start()
    try:
        session, _ = sign_in(hub, openbis_double.control.login("JDoe", "jdoe-password"))
        assert session.get(f"{hub.url}/hub/api/user", timeout=10).json()["admin"] is True
        token = openbis_double.control.login("alice", "alice-password")
        r = requests.get(eln_link(hub, token), allow_redirects=False, timeout=30)
        assert r.status_code == 403
        assert "alice may not use this JupyterHub" in r.text
        assert "alice" not in {u["name"] for u in hub.api("/users").json()}
    finally:
        hub.stop()
