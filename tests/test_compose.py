"""The whole ELN journey against the admin's compose stack: compose.yaml + compose.double.yaml
(the openBIS double as a container in place of openBIS), real hub and user containers on the
real Docker engine, HTTPS verified everywhere, headless Chromium for what a person clicks.

The tests share one stack and run in file order, as one user's day would go: first notebooks,
running one, hub restarts, an expired session, another user trying to get in, all kernels.
"""

import base64
import hashlib
import json
import re
import subprocess
import time
from urllib.parse import quote

import pytest
import requests

from openbis_double import seed
from tests.support.browser import KERNEL_IDLE, NetworkChanges
from tests.support.compose_stack import ELN_ORIGIN, escape_user
from tests.support.eln import (
    RAW_BIN,
    RAW_CSV,
    TOKEN_PLACEHOLDER,
    eln_link,
    eln_new_notebook,
    eln_post,
    run_eln_notebook,
    seed_notebook,
)
from tests.support.jupyter_api import KernelSession

pytestmark = [pytest.mark.docker, pytest.mark.browser]

# what the ELN's user typed: a folder and a notebook name with spaces
FOLDER, NAME = "growth analyses", "run 1"


@pytest.fixture(scope="module")
def admin_token(compose_stack):
    """An API token of the hub admin (JUPYTERHUB_ADMIN_USERS=admin), made on /hub/token."""
    return compose_stack.api_token("admin")


@pytest.fixture(scope="module")
def jdoe(compose_stack):
    """JDoe's ELN notebook: written through the ELN's two POSTs, JDoe's server running."""
    token = compose_stack.login("JDoe")
    written, link = eln_new_notebook(
        compose_stack, token, "JDoe", FOLDER, NAME, seed_notebook, ELN_ORIGIN
    )
    return {"written": written, "link": link}


def open_notebook(browser, link, file_name, timeout=120_000, asked=None):
    """Open ``link`` in a fresh browser profile; return the page once it shows the notebook's
    cells: the rendered title and the code cell holding the file name (reloaded when Docker's
    network changes abort its loading, tests/support/browser.py). ``asked``: a list that gets
    the URL of every request the page makes."""
    context = browser.new_context()
    if asked is not None:
        context.on("request", lambda request: asked.append(request.url))
    page = context.new_page()
    title = page.get_by_role("heading", name="Jupyter notebook title, modify me!")
    cell = page.locator(".jp-CodeCell .cm-content", has_text=f"fileName='{file_name}'")
    return NetworkChanges(context).load(
        page,
        lambda first: page.goto(link, timeout=timeout),
        lambda: title.is_visible() and cell.is_visible(),
        timeout,
    )


def contents(stack, token, user, path, **params):
    """The Jupyter contents API of ``user``'s server (through the hub's proxy)."""
    return server_api(stack, token, user, f"contents/{path}", **params)


def server_api(stack, token, user, path, **params):
    """A GET of ``user``'s server's Jupyter API (through the hub's proxy)."""
    return requests.get(
        f"{stack.url}/user/{user}/api/{path}",
        params=params,
        headers={"Authorization": f"token {token}"},
        verify=stack.ca_file,
        timeout=60,
    )


def file_bytes(stack, token, user, path) -> bytes:
    answer = contents(stack, token, user, path, type="file", format="base64")
    assert answer.status_code == 200, (path, answer.text)
    return base64.b64decode(answer.json()["content"])


def container_id(stack, user):
    container = stack.user_container(user)
    assert container and container["State"]["Running"], f"{user}'s container is not running"
    return container["Id"]


# --- 1. the ELN's "New Jupyter Notebook" --------------------------------------------------
@pytest.mark.parametrize("user", ["alice", "JDoe"])
def test_eln_new_notebook_opens_in_chromium(compose_stack, admin_token, hub_browser, user):
    stack = compose_stack
    assert stack.api(f"/users/{user}", admin_token).status_code == 404  # never seen
    token = stack.login(user)

    status, headers, test = eln_post(
        stack, token, FOLDER, f"{NAME}.ipynb", "True", b"TEST", ELN_ORIGIN
    )
    assert status == 200, test
    assert test == {"fileName": f"{NAME}.ipynb", "path": f"{FOLDER}/{NAME}.ipynb"}
    # the ELN page can read the answer (its origin is openBIS's, the default)
    assert headers["Access-Control-Allow-Origin"] == ELN_ORIGIN
    sent = json.dumps(seed_notebook(test["fileName"])).encode()
    status, headers, written = eln_post(
        stack, token, FOLDER, f"{NAME}.ipynb", "False", sent, ELN_ORIGIN
    )
    assert status == 200, written
    assert written == test
    assert headers["Access-Control-Allow-Origin"] == ELN_ORIGIN

    # the user exists now, the user id exactly as openBIS spells it, with a server in its
    # own container, on its own volume, with the configured memory limit
    assert stack.api(f"/users/{user}", admin_token).json()["name"] == user
    container = stack.user_container(user)
    assert container["State"]["Running"]
    assert container["HostConfig"]["Memory"] == 2 * 1024**3
    volumes = {m["Name"] for m in container["Mounts"] if m["Destination"] == "/home/jovyan"}
    assert volumes == {f"{stack.project}-user-{escape_user(user)}"}
    assert file_bytes(stack, admin_token, user, written["path"]) == sent
    # the notebook's kernel starts now, before the browser asks for it
    deadline = time.monotonic() + 60
    while not (started := kernels_of(stack, admin_token, user, written["path"])):
        assert time.monotonic() < deadline, "no kernel started for the new notebook"
        time.sleep(0.1)
    assert [name for _, name in started] == ["python3"]

    link = eln_link(stack, token, f"/user/{user}/notebooks/{FOLDER}/{written['fileName']}")
    asked = []
    page = open_notebook(hub_browser, link, written["fileName"], asked=asked)
    try:
        assert page.url == f"{stack.url}/user/{user}/notebooks/growth%20analyses/run%201.ipynb"
        assert token not in page.url
        parents = page.locator(".jp-CodeCell .cm-content", has_text="resultDatasetParents=")
        # as a person reads it: scrolled to (Notebook 7 does not render cells out of view:
        # their text is in the page, their rendered text empty, seen once in CI)
        parents.scroll_into_view_if_needed()
        assert parents.inner_text() == f'resultDatasetParents=["{RAW_CSV}","{RAW_BIN}"]'
        page.locator(KERNEL_IDLE).wait_for(timeout=60_000)
        # the page joined that kernel: one kernel for the notebook, one on the server
        assert kernels_of(stack, admin_token, user, written["path"]) == started
        assert len(server_api(stack, admin_token, user, "kernels").json()) == 1
        # the openBIS panel, in Notebook 7's collapsed sidebar, asks openBIS nothing unopened
        panel_api = ("/openbis/api/status", "/openbis/api/children", "/openbis/api/notebook-")
        assert not [url for url in asked if any(path in url for path in panel_api)]
    finally:
        page.context.close()


def kernels_of(stack, token, user, path):
    """(id, name) of the kernels of the sessions ``user``'s server has for the notebook at
    ``path``."""
    sessions = server_api(stack, token, user, "sessions").json()
    return [(s["kernel"]["id"], s["kernel"]["name"]) for s in sessions if s["path"] == path]


def cached_for_good(answer):
    """A year or more in the browser's cache, without asking again."""
    cache = answer.headers.get("Cache-Control", "")
    ages = [int(age) for age in re.findall(r"max-age=(\d+)", cache)]
    return bool(ages) and ages[0] >= 365 * 24 * 3600 and "no-cache" not in cache


def test_static_files_are_cached_for_good_and_compressed(compose_stack, jdoe):
    """What a browser gets for the ELN link's page: its versioned scripts and styles (Notebook 7,
    the lab extensions, the hub's) kept for good, and everything sent gzip-compressed."""
    stack = compose_stack
    browser = stack.session()
    browser.headers["Accept-Encoding"] = "gzip, deflate"
    page = browser.get(jdoe["link"], timeout=120)
    assert page.ok and page.url.startswith(f"{stack.url}/user/JDoe/notebooks/")
    assert page.headers["Content-Encoding"] == "gzip"

    config = json.loads(
        re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S).group(1)
    )
    # Notebook 7's main script, and each lab extension's entry point (ours among them)
    scripts = re.findall(r'<script src="([^"]+\?v=[0-9a-f]+)"', page.text)
    extensions = {e["name"]: e["load"] for e in config["federated_extensions"]}
    assert "@openbis-jupyterhub/jupyterlab-openbis" in extensions
    scripts += [
        f"{config['fullLabextensionsUrl']}/{name}/{load}" for name, load in extensions.items()
    ]
    # the hub's own page for a browser that is not signed in yet, with its styles and scripts
    login = stack.session().get(f"{stack.url}/hub/login", headers=browser.headers, timeout=60)
    assert login.headers["Content-Encoding"] == "gzip"
    hub_static = re.findall(r'"(/hub/static/[^"]+\.(?:css|js)\?v=[0-9a-f]+)"', login.text)
    assert any(".css?" in url for url in hub_static) and any(".js?" in url for url in hub_static)

    for url in scripts + hub_static:
        answer = browser.get(stack.url + url if url.startswith("/") else url, timeout=60)
        assert answer.status_code == 200, url
        assert cached_for_good(answer), (url, answer.headers.get("Cache-Control"))
        assert answer.headers.get("Content-Encoding") == "gzip", url
        assert len(answer.content) > 0

    # what is not versioned is checked again each time (a new image's files show at once)
    page_again = browser.get(page.url, timeout=60)
    assert not cached_for_good(page_again)


# --- 2. running the notebook in the user's container ----------------------------------------
def test_eln_notebook_runs_and_saves_the_analysis_dataset(compose_stack, admin_token, jdoe):
    stack = compose_stack
    before = len(stack.control.created_datasets())
    path = jdoe["written"]["path"]
    notebook = json.loads(file_bytes(stack, admin_token, "JDoe", path))

    # cell by cell, as a person runs it, in a kernel in the notebook's folder
    kernel = KernelSession(
        f"{stack.url}/user/JDoe/", admin_token, ca_file=str(stack.ca_file), path=FOLDER
    )
    try:
        assert "DataSet successfully created" in run_eln_notebook(kernel, notebook)
    finally:
        kernel.shutdown()

    # both datasets were downloaded next to the notebook
    assert (
        file_bytes(stack, admin_token, "JDoe", f"{FOLDER}/{RAW_CSV}/original/measurements.csv")
        == seed.CSV_BYTES
    )
    spectrum = file_bytes(stack, admin_token, "JDoe", f"{FOLDER}/{RAW_BIN}/original/spectrum.bin")
    assert hashlib.sha256(spectrum).digest() == hashlib.sha256(seed.BINARY_BYTES).digest()

    # one ANALYSIS_NOTEBOOK dataset, by JDoe, on the object, with the picked parents, holding
    # the notebook and its HTML copy
    created = stack.control.created_datasets()[before:]
    assert len(created) == 1
    dataset = created[0]
    assert dataset["type"] == "ANALYSIS_NOTEBOOK"
    assert dataset["registrator"] == "JDoe"
    assert dataset["owner"] == {
        "sample": {"identifier": "/LAB/PROJ/SAMPLE1", "permId": "20240115093000000-3"}
    }
    assert dataset["parents"] == [RAW_CSV, RAW_BIN]
    assert dataset["properties"]["$NAME"] == "Name your dataset!"
    name = jdoe["written"]["fileName"]
    files = {f["path"].rsplit("/", 1)[1]: f for f in dataset["files"]}
    assert set(files) == {name, f"{name}.html"}
    in_home = file_bytes(stack, admin_token, "JDoe", path)
    assert files[name]["sha256"] == hashlib.sha256(in_home).hexdigest()
    html = stack.control.file(dataset["permId"], files[f"{name}.html"]["path"])
    assert b"Jupyter notebook title, modify me!" in html


# --- 2b. the re-run link: a saved analysis opens in JupyterLab in the user's container -------
def test_a_saved_analysis_opens_through_the_hub_link(compose_stack, admin_token, hub_browser, jdoe):
    """Saved with the openBIS panel's API in JDoe's container, opened with the link an ELN
    page or an email holds: sign-in, confirmation, JupyterLab (our image) with the banner."""
    stack = compose_stack
    saved = requests.post(
        f"{stack.url}/user/JDoe/openbis/api/datasets",
        json={
            "notebook": jdoe["written"]["path"],
            "owner": {"kind": "sample", "id": "/LAB/PROJ/SAMPLE1"},
            "parents": [RAW_CSV],
            "html": False,
        },
        headers={"Authorization": f"token {admin_token}"},
        verify=stack.ca_file,
        timeout=120,
    )
    assert saved.status_code == 201, saved.text
    perm_id = saved.json()["permId"]
    name = jdoe["written"]["fileName"]

    token = stack.login("JDoe")
    context = hub_browser.new_context()
    try:
        page = context.new_page()
        changes = NetworkChanges(context)
        confirm = page.get_by_role("button", name="Open the analysis")
        link = eln_link(stack, token, f"/hub/openbis-notebook/open/{perm_id}")
        changes.load(page, lambda first: page.goto(link), confirm.is_visible)
        assert token not in page.url
        banner = page.locator(".jp-OpenbisBanner", has_text=f"openBIS dataset {perm_id}")
        changes.load(
            page, lambda first: confirm.click() if first else page.reload(), banner.is_visible
        )
        assert page.url.endswith(f"/user/JDoe/lab/tree/{perm_id}/{quote(name)}")
        # saved and re-opened in the same image: nothing differs
        assert "Same environment: no differences." in banner.inner_text()
    finally:
        context.close()
    reopened = file_bytes(stack, admin_token, "JDoe", f"{perm_id}/{name}")
    assert reopened == file_bytes(stack, admin_token, "JDoe", jdoe["written"]["path"])


# --- 2c. Run All saves the analysis as it was seen ------------------------------------------
# what the scientist does to the ELN's notebook before Run All: the optional session-refresh
# cell goes (the ELN's session is valid; its placeholder token would fail), and the analysis
# goes into "Process your data here": a plot of the first CSV
NO_TOKEN = "# the ELN's session is valid: no token needed"
PLOT = (
    "import glob\nimport pandas as pd\n"
    "csv = sorted(glob.glob(f'./{resultDatasetParents[0]}/**/*.csv', recursive=True))[0]\n"
    "table = pd.read_csv(csv)\n"
    "table.plot(x=table.columns[0], y=list(table.columns[1:]), title=csv)"
)
PNG_IN_HTML = b'src="data:image/png;base64,'


def replace_source(page, cell, text):
    """Type over a code cell's source (inserted as pasted: no auto-closed brackets)."""
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


class Watched:
    """A page whose loads and kernel websockets are watched from its first load on: Docker's
    network changes on this host (tests/browser.py) abort loads and close the kernel's
    websocket, which loses what was sent on it."""

    def __init__(self, browser, **options):
        self.context = browser.new_context(**options)
        self.network = NetworkChanges(self.context)
        self.page = self.context.new_page()
        self.running = []
        self.kernels = set()  # the kernels the page is connected to
        self.page.on("websocket", self._websocket)

    def _websocket(self, websocket):
        kernel = re.search(r"/api/kernels/([^/?]+)/channels", websocket.url)
        if kernel:
            websocket.on("framereceived", lambda frame: self._received(kernel[1], frame))
        websocket.on("close", lambda _: self._closed(kernel and kernel[1]))

    def _received(self, kernel, frame):
        # JupyterLab's kernel connection is up once the kernel answered its kernel_info_request
        if "kernel_info_reply" in (frame if isinstance(frame, str) else frame.decode("latin-1")):
            self.kernels.add(kernel)

    def _closed(self, kernel):
        self.kernels.discard(kernel)
        if self.running:
            self.network.aborted.append("kernel websocket")

    def has_kernel_of(self, stack, token, path):
        """The page is connected to the kernel of JDoe's notebook at ``path`` (its session's):
        JupyterLab's execution indicator says idle already before, and a Run All then runs
        nothing (the prompts stay empty)."""
        if not self.kernels:
            return False
        return any(kernel in self.kernels for kernel, _ in kernels_of(stack, token, "JDoe", path))

    def load(self, url, ready, timeout=120_000):
        self.network.load(self.page, lambda first: self.page.goto(url), ready, timeout)

    def run_all_until(self, done, ready, timeout=240):
        """Run > Run All Cells until ``done()`` answers (a truthy value, returned); when the
        network change struck meanwhile, reload and Run All again, as a person would."""
        page, result = self.page, None
        for _ in range(3):
            self.network.aborted.clear()
            self.running[:] = [True]
            kernel = page.locator(".jp-Dialog", has_text="Select Kernel")
            if kernel.count():  # JupyterLab may ask once before the first run
                kernel.get_by_role("button", name="Select").click()
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            deadline = time.monotonic() + timeout
            while (
                not (result := done()) and not self.network.aborted and time.monotonic() < deadline
            ):
                time.sleep(1)
            self.running.clear()  # a reload closes the websocket too
            if result or not self.network.aborted:
                return result
            self.network.load(page, lambda first: page.reload(), ready)
        return result


@pytest.mark.parametrize("ui", ["notebooks", "lab/tree"], ids=["notebook7", "jupyterlab"])
def test_run_all_saves_the_outputs_and_the_plot_into_openbis(
    compose_stack, admin_token, hub_browser, ui
):
    """The ELN's notebook, Run All: its own cells write the HTML copy from the notebook's file
    and upload that file; the dataset holds every output above them, the plot among them."""
    stack = compose_stack
    folder = f"saved-{ui.split('/')[0]}"
    token = stack.login("JDoe")
    written, _ = eln_new_notebook(
        stack, token, "JDoe", folder, "analysis", seed_notebook, ELN_ORIGIN
    )
    name = written["fileName"]
    link = eln_link(stack, token, f"/user/JDoe/{ui}/{folder}/{name}")
    watched = Watched(hub_browser)
    page, idle = watched.page, watched.page.locator(KERNEL_IDLE)

    def ready():
        return idle.is_visible() and watched.has_kernel_of(stack, admin_token, written["path"])

    try:
        watched.load(link, ready)
        replace_source(page, page.locator(".jp-CodeCell", has_text=TOKEN_PLACEHOLDER), NO_TOKEN)
        process = page.locator(".jp-MarkdownCell", has_text="Process your data here")
        replace_source(page, process.locator("xpath=following-sibling::div[1]"), PLOT)
        page.keyboard.press("Control+s")  # the edits are kept should the page need a reload
        deadline = time.monotonic() + 60
        while "table.plot(" not in file_bytes(stack, admin_token, "JDoe", written["path"]).decode():
            assert time.monotonic() < deadline, "the edited notebook was not saved"
            time.sleep(0.5)

        before = len(stack.control.created_datasets())
        created = watched.run_all_until(lambda: stack.control.created_datasets()[before:], ready)
        errors = page.locator(".jp-OutputArea-output[data-mime-type*=error]").all_inner_texts()
        assert created, f"Run All did not save the analysis: errors {errors[:2]}"
        # what the scientist saw: the plot
        assert page.locator(".jp-OutputArea-output img").count() == 1
    finally:
        watched.context.close()
    [dataset] = created
    files = {f["path"].rsplit("/", 1)[1]: f["path"] for f in dataset["files"]}
    assert set(files) == {name, f"{name}.html"}
    saved = json.loads(stack.control.file(dataset["permId"], files[name]))
    code = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
    # every cell above the upload had run (its prompt number is set once its reply came), with
    # its outputs: the downloads, the plot; the HTML copy's write had finished (it shows
    # nothing: codecs' write returns None); the upload itself was still to run
    assert all(cell["execution_count"] for cell in code[:-1]), [c["source"] for c in code]
    downloads = [cell for cell in code if ".download(" in "".join(cell["source"])]
    assert downloads and all(cell["outputs"] for cell in downloads)
    [plot] = [cell for cell in code if "table.plot(" in "".join(cell["source"])]
    assert any("image/png" in output.get("data", {}) for output in plot["outputs"])
    assert "DataSet successfully created" not in json.dumps(saved)
    # the HTML copy (what openBIS shows) has the plot
    html = stack.control.file(dataset["permId"], files[f"{name}.html"])
    assert html.count(PNG_IN_HTML) == 1


WIDGETS = (
    "import ipywidgets as w\n"
    "slider = w.IntSlider(value=7, description='Seven')\n"
    "label = w.Label()\n"
    "w.dlink((slider, 'value'), (label, 'value'), transform=lambda v: f'got {v}')\n"
    "w.VBox([slider, label])"
)


def test_widgets_saved_from_the_panel_show_in_the_html(compose_stack, admin_token, hub_browser):
    """A widget as last seen (moved to 9) is in the saved notebook and in its HTML copy."""
    stack = compose_stack
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
             "source": 'ownerType = "object"\nownerId = "/LAB/PROJ/SAMPLE1"'},
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
             "source": WIDGETS},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    headers, path = {"Authorization": f"token {admin_token}"}, "widgets/slider.ipynb"
    for file, body in [
        ("widgets", {"type": "directory"}),
        (path, {"type": "notebook", "content": notebook}),
    ]:
        answer = requests.put(
            f"{stack.url}/user/JDoe/api/contents/{file}", json=body, headers=headers,
            verify=stack.ca_file, timeout=60,
        )  # fmt: skip
        assert answer.status_code in (200, 201), answer.text
    # its kernel started as the ELN's notebooks have theirs, the session named as JupyterLab
    # names its own (for a session without a name, JupyterLab started a second one beside it)
    session = {
        "path": path,
        "name": "slider.ipynb",
        "type": "notebook",
        "kernel": {"name": "python3"},
    }
    answer = requests.post(
        f"{stack.url}/user/JDoe/api/sessions", json=session, headers=headers,
        verify=stack.ca_file, timeout=60,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    token = stack.login("JDoe")
    watched = Watched(hub_browser, viewport={"width": 1400, "height": 900})
    page = watched.page
    link = eln_link(stack, token, "/user/JDoe/lab/tree/widgets/slider.ipynb")
    before = len(stack.control.created_datasets())
    # JupyterLab reopens the tabs of the user's last visit too (the ELN notebook of the Run All
    # test): Run All once slider.ipynb is the tab in front and the page has its kernel
    in_front = page.locator(".lm-DockPanel-tabBar .lm-mod-current", has_text="slider.ipynb")

    def ready():
        return in_front.count() == 1 and watched.has_kernel_of(stack, admin_token, path)

    try:
        watched.load(link, ready)
        assert len(kernels_of(stack, admin_token, "JDoe", path)) == 1  # the page joined it
        slider = page.locator(".widget-slider", has_text="Seven")
        assert watched.run_all_until(slider.is_visible, ready, timeout=60)
        slider.locator(".widget-readout").fill("9")
        slider.locator(".widget-readout").press("Enter")
        page.locator(".widget-label", has_text="got 9").wait_for()

        page.locator('li[data-id="openbis-panel"]').click()
        form = page.locator("#openbis-panel .jp-OpenbisPanel-save")
        form.locator(".jp-OpenbisPanel-owner", has_text="Object /LAB/PROJ/SAMPLE1").wait_for()
        form.get_by_role("button", name="Save to openBIS").click()
        form.locator(".jp-OpenbisPanel-message", has_text="Saved as dataset").wait_for()
    finally:
        watched.context.close()
    [dataset] = stack.control.created_datasets()[before:]
    files = {f["path"].rsplit("/", 1)[1]: f["path"] for f in dataset["files"]}
    saved = json.loads(stack.control.file(dataset["permId"], files["slider.ipynb"]))
    state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    [model_id] = [k for k, m in state.items() if m["model_name"] == "IntSliderModel"]
    assert state[model_id]["state"]["value"] == 9
    # the HTML copy carries the same state and the view of that slider, for openBIS to show
    html = stack.control.file(dataset["permId"], files["slider.ipynb.html"]).decode()
    embedded = re.search(
        r'<script type="application/vnd.jupyter.widget-state\+json">\s*(.*?)\s*</script>',
        html,
        re.S,
    )
    assert embedded, "no widget state in the HTML copy"
    assert json.loads(embedded[1])["state"][model_id]["state"]["value"] == 9
    views = re.findall(
        r'<script type="application/vnd.jupyter.widget-view\+json">\s*(.*?)\s*</script>', html, re.S
    )
    [box] = [k for k, m in state.items() if m["model_name"] == "VBoxModel"]
    assert [json.loads(view)["model_id"] for view in views] == [box]


# --- 3. hub restart, and down + up: links work at once, files stay ------------------------
def test_eln_link_works_after_hub_restart_and_down_up(
    compose_stack, admin_token, hub_browser, jdoe
):
    stack = compose_stack
    file_name = jdoe["written"]["fileName"]
    server = container_id(stack, "JDoe")
    notebook = file_bytes(stack, admin_token, "JDoe", jdoe["written"]["path"])

    stack.restart_hub()
    # the running server was found again: same container, the same ELN link opens it
    assert stack.api("/users/JDoe", admin_token).json()["servers"][""]["ready"]
    page = open_notebook(hub_browser, jdoe["link"], file_name)
    page.context.close()
    assert container_id(stack, "JDoe") == server

    stack.down()
    assert stack.user_container("JDoe") is None
    stack.up()
    # the double forgets its sessions when it restarts (openBIS would not): a new one
    token = stack.login("JDoe")
    link = eln_link(stack, token, f"/user/JDoe/notebooks/{FOLDER}/{file_name}")
    page = open_notebook(hub_browser, link, file_name)
    page.context.close()
    # the admin token, the user and their home all survived
    assert container_id(stack, "JDoe") != server
    assert file_bytes(stack, admin_token, "JDoe", jdoe["written"]["path"]) == notebook
    assert (
        file_bytes(stack, admin_token, "JDoe", f"{FOLDER}/{RAW_CSV}/original/measurements.csv")
        == seed.CSV_BYTES
    )


# --- 4. an expired openBIS session, and a new one from the ELN -----------------------------
def test_new_eln_session_reaches_the_running_kernel(compose_stack, admin_token, hub_browser, jdoe):
    stack = compose_stack
    file_name = jdoe["written"]["fileName"]
    next_path = f"/user/JDoe/notebooks/{FOLDER}/{file_name}"
    first = stack.login("JDoe")
    open_notebook(hub_browser, eln_link(stack, first, next_path), file_name).context.close()
    server = container_id(stack, "JDoe")
    kernel = KernelSession(f"{stack.url}/user/JDoe/", admin_token, ca_file=str(stack.ca_file))
    try:
        code = (
            # a digest: the kernel scrubs session tokens from what it prints
            "import hashlib\nfrom pybis import Openbis\no = Openbis()\n"
            "print(hashlib.sha256(o.token.encode()).hexdigest())\n"
            f"o.get_dataset({RAW_CSV!r}).permId"
        )
        output, error = kernel.execute(code)
        assert error is None, error
        assert output.startswith(hashlib.sha256(first.encode()).hexdigest())

        stack.control.expire(token=first)
        _, error = kernel.execute(f"o.get_dataset({RAW_CSV!r})")
        assert error is not None  # the session died in openBIS

        second = stack.login("JDoe")
        open_notebook(hub_browser, eln_link(stack, second, next_path), file_name).context.close()
        # the same kernel, nothing restarted: Openbis() now finds the new session
        output, error = kernel.execute(code)
        assert error is None, error
        assert output.startswith(hashlib.sha256(second.encode()).hexdigest())
        assert RAW_CSV in output
    finally:
        kernel.shutdown()
    assert container_id(stack, "JDoe") == server


# --- 5. one user cannot reach another's server or home -------------------------------------
def test_a_user_cannot_open_or_write_another_users_server(compose_stack, admin_token, jdoe):
    stack = compose_stack
    listing = contents(stack, admin_token, "JDoe", FOLDER).json()
    jdoe_files = sorted(item["name"] for item in listing["content"])

    alice = stack.login("alice")
    # alice's server runs (the ELN's test POST starts it), her browser is signed in to it
    assert eln_post(stack, alice, FOLDER, f"{NAME}.ipynb", "True", b"TEST", ELN_ORIGIN)[0] == 200
    session = stack.session()
    own = session.get(eln_link(stack, alice, "/user/alice/lab"), timeout=120)
    assert own.status_code == 200 and own.url == f"{stack.url}/user/alice/lab"
    # alice's cookie: JDoe's notebook page and files are refused, nothing of them shown
    for path in (f"notebooks/{jdoe['written']['path']}", f"api/contents/{FOLDER}", "lab"):
        answer = session.get(f"{stack.url}/user/JDoe/{path}", timeout=60)
        assert answer.status_code == 403, (path, answer.status_code, answer.url)
        assert "resultDatasetParents" not in answer.text and RAW_CSV not in answer.text
    # alice's API token: no reading, no writing
    alice_token = stack.api_token("alice")
    headers = {"Authorization": f"token {alice_token}"}
    for method, path, body in [
        ("GET", f"api/contents/{FOLDER}", None),
        ("PUT", "api/contents/planted.ipynb", {"type": "notebook", "content": seed_notebook("x")}),
        ("POST", "api/kernels", {"name": "python3"}),
    ]:
        answer = requests.request(
            method, f"{stack.url}/user/JDoe/{path}", json=body, headers=headers,
            verify=stack.ca_file, timeout=60,
        )  # fmt: skip
        assert answer.status_code == 403, (method, path, answer.status_code)
    assert stack.api("/users/JDoe", alice_token).status_code in (403, 404)

    # the ELN endpoint with alice's session writes only into alice's home; paths that would
    # leave it are refused
    body = json.dumps(seed_notebook("planted.ipynb")).encode()
    for folder in ("../JDoe", "/home/jovyan", f"{FOLDER}/../..", "..", "/"):
        status, _, answer = eln_post(
            stack, alice, folder, "planted.ipynb", "False", body, ELN_ORIGIN
        )
        assert status == 400, (folder, answer)
    status, _, answer = eln_post(stack, alice, FOLDER, f"{NAME}.ipynb", "False", body, ELN_ORIGIN)
    assert status == 200, answer
    listing = contents(stack, admin_token, "JDoe", FOLDER).json()
    assert sorted(item["name"] for item in listing["content"]) == jdoe_files
    assert not contents(stack, admin_token, "JDoe", "planted.ipynb").ok
    assert file_bytes(stack, admin_token, "alice", answer["path"]) == body


# --- 6. every kernel runs in the spawned container -----------------------------------------
@pytest.mark.parametrize(
    "kernel, code",
    [
        ("python3", "import socket; print(6 * 7, socket.gethostname())"),
        ("ir", 'cat(6 * 7, Sys.info()[["nodename"]])'),
        ("octave", "printf('%d %s\\n', 6 * 7, gethostname())"),
        ("bash", "echo $((6 * 7)) $HOSTNAME"),
        ("sos", "import socket; print(6 * 7, socket.gethostname())"),
    ],
)
def test_every_kernel_runs_in_the_user_container(compose_stack, admin_token, jdoe, kernel, code):
    stack = compose_stack
    hostname = stack.user_container("JDoe")["Config"]["Hostname"]
    session = KernelSession(f"{stack.url}/user/JDoe/", admin_token, kernel, str(stack.ca_file))
    try:
        output, error = session.execute(code, timeout=120)
    finally:
        session.shutdown()
    assert error is None, error
    assert re.fullmatch(rf"42 {hostname}\s*", output), output


# --- 7. backup and restore: a lost home comes back, nothing is overwritten ------------------
def test_backup_and_restore_bring_back_a_lost_home(compose_stack, admin_token, jdoe, tmp_path):
    stack = compose_stack
    notebook = file_bytes(stack, admin_token, "JDoe", jdoe["written"]["path"])
    alice_volume, jdoe_volume = stack.user_volume("alice"), stack.user_volume("JDoe")
    assert "backup written to" in stack.make("backup", f"BACKUP={tmp_path}/b")
    archives = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "b").iterdir()}
    assert archives == {
        "hub-state.tar.gz": 0o600,
        f"{alice_volume}.tar.gz": 0o600,
        f"{jdoe_volume}.tar.gz": 0o600,
    }
    with pytest.raises(RuntimeError, match="the hub is running: make down first"):
        stack.make("restore", f"BACKUP={tmp_path}/b")

    stack.down()
    subprocess.run(["docker", "volume", "rm", jdoe_volume], check=True, timeout=60)
    restored = stack.make("restore", f"BACKUP={tmp_path}/b")
    assert f"restored {jdoe_volume}" in restored
    assert f"skipped {alice_volume}: it holds files" in restored
    assert f"skipped {stack.project}_hub-state: it holds files" in restored

    stack.up()
    token = stack.login("JDoe")
    # the restored home, as its owner sees it after a new ELN sign-in (which starts the server)
    stack.session().get(eln_link(stack, token, "/user/JDoe/lab"), timeout=330).raise_for_status()
    deadline = time.monotonic() + 180
    while not stack.api("/users/JDoe", admin_token).json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, "JDoe's server did not start after the restore"
        time.sleep(0.5)
    assert file_bytes(stack, admin_token, "JDoe", jdoe["written"]["path"]) == notebook


def test_idle_servers_are_culled(hub_image, singleuser_image, openbis_double_image, tmp_path):
    """The idle culler stops a server nobody uses (on its own stack: a 20 s timeout). With
    internal_ssl it reaches the hub API with the hub's certificate; without, it cannot."""
    from tests.support.compose_stack import ComposeStack

    stack = ComposeStack(
        tmp_path, hub_image, singleuser_image, openbis_double_image, JUPYTERHUB_CULL_TIMEOUT="20"
    )
    try:
        stack.up()
        status, _, answer = eln_post(
            stack, stack.login("JDoe"), "x", "x.ipynb", "True", b"TEST", ELN_ORIGIN
        )
        assert status == 200, answer
        assert stack.user_container("JDoe")["State"]["Running"]
        deadline = time.monotonic() + 120
        while stack.user_container("JDoe") is not None:
            assert time.monotonic() < deadline, f"not culled:\n{stack.logs()}"
            time.sleep(1)
        # stopped by the culler, through the hub's API
        assert re.search(r"20[24] DELETE /hub/api/users/JDoe/server \(idle-culler@", stack.logs())
    finally:
        stack.remove()
