"""`make trial` as a newcomer runs it: one command, one address, the ELN journey in Chromium
(the ELN stand-in's buttons, the notebook runs, the analysis is saved back), `make trial-down`.

The trial gets its own name and free ports here, so a developer's own trial keeps running.
"""

import json
import re
import subprocess
import time
import uuid

import pytest
from playwright.sync_api import Error as PlaywrightError

from openbis_double import DoubleControl, seed
from tests.support import REPO_ROOT
from tests.support.browser import NetworkChanges
from tests.support.images import admin_environment, docker
from tests.support.processes import free_port

pytestmark = [pytest.mark.docker, pytest.mark.browser]


def make(target, env, timeout=600):
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), target],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"make {target}:\n{result.stdout}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def trial(images, tmp_path_factory):
    name = f"obtrial-{uuid.uuid4().hex[:8]}"
    env = admin_environment(
        TRIAL_NAME=name, TRIAL_PORT=str(free_port()), TRIAL_ELN_PORT=str(free_port())
    )
    printed = make("trial", env)
    project = ["docker", "compose", "-p", name]
    port = subprocess.run(
        [*project, "port", "openbis-double", "8443"], capture_output=True, text=True, check=True
    ).stdout.strip()
    ca_file = tmp_path_factory.mktemp("trial") / "ca.pem"
    ca_file.write_text(docker("exec", f"{name}-openbis-double-1", "cat", "/certs/ca.pem"))
    control = DoubleControl(f"https://127.0.0.1:{port.rsplit(':', 1)[1]}", str(ca_file))
    try:
        yield {"name": name, "env": env, "printed": printed, "control": control}
    finally:
        down = make("trial-down", env)
        assert "the trial is removed" in down
        assert not docker("ps", "-aq", "--filter", f"name={name}").strip()
        assert not docker("volume", "ls", "-q", "--filter", f"name={name}").strip()


def test_trial_prints_one_address_and_runs_the_eln_journey(trial, browser):
    addresses = re.findall(r"^\s+(http://\S+)$", trial["printed"], re.M)
    assert addresses == [
        f"http://localhost:{trial['env']['TRIAL_ELN_PORT']}/openbis/webapp/eln-lims/"
    ]
    context = browser.new_context()
    network = NetworkChanges(context)
    eln = context.new_page()
    network.load(eln, lambda first: eln.goto(addresses[0]), eln.locator(".banner").is_visible)
    assert "Trial." in eln.locator(".banner").inner_text()
    eln.locator(f"input[name=dataset][value='{seed.CSV_DATASET}']").check()
    with context.expect_page(timeout=180_000) as opened:
        eln.get_by_role("button", name="New Jupyter Notebook").click()
    notebook = opened.value
    # the kernel's websocket, from the page's first load on (JupyterLab opens it as it loads):
    # one that closes while the cells run (below) lost what was sent on it
    running = []
    notebook.on(
        "websocket",
        lambda ws: ws.on("close", lambda _: running and network.aborted.append(ws.url)),
    )
    title = notebook.get_by_role("heading", name="Jupyter notebook title, modify me!")
    cell = notebook.locator(".jp-CodeCell .cm-content", has_text="fileName='analysis.ipynb'")
    try:
        # the tab follows the ELN's link by itself; a reload is a reload of where it landed
        network.load(
            notebook,
            lambda first: first or notebook.reload(),
            lambda: title.is_visible() and cell.is_visible(),
            180_000,
        )
    except (PlaywrightError, AssertionError) as e:
        raise AssertionError(f"the ELN page says: {eln.locator('#status').inner_text()}") from e
    assert notebook.url.endswith("/user/JDoe/notebooks/trial/analysis.ipynb")
    assert "token" not in notebook.url

    # Run > Run All Cells, as a person does; the last cell saves the analysis to openBIS. A
    # network change (tests/support/browser.py) also drops the kernel's websocket, and executions
    # sent meanwhile are lost: then reload and run all again, as a person would.
    created = []
    for _ in range(3):
        network.aborted.clear()
        running[:] = [True]
        notebook.get_by_role("menuitem", name="Run", exact=True).click()
        notebook.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        deadline = time.monotonic() + 240
        while not created and not network.aborted and time.monotonic() < deadline:
            created = trial["control"].created_datasets()
            time.sleep(1)
        running.clear()  # a reload below closes the websocket too
        if created or not network.aborted:
            break
        network.load(
            notebook,
            lambda first: notebook.reload(),
            lambda: title.is_visible() and cell.is_visible(),
            180_000,
        )
    if not created:  # what a person would look at: outputs, prompts, dialogs, the server's log
        errors = notebook.locator(".jp-OutputArea-output.jp-RenderedText[data-mime-type*=error]")
        prompts = notebook.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        dialogs = notebook.locator(".jp-Dialog-content").all_inner_texts()
        log = subprocess.run(
            ["docker", "logs", "--tail", "30", f"{trial['name']}--4a-44oe"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        raise AssertionError(
            f"Run All did not save the analysis: errors {errors.all_inner_texts()[:2]}, "
            f"prompts {prompts}, dialogs {dialogs}, "
            f"the server's log:\n{log.stdout[-4000:]}{log.stderr[-4000:]}"
        )
    dataset = created[0]
    assert (dataset["type"], dataset["registrator"]) == ("ANALYSIS_NOTEBOOK", "JDoe")
    assert dataset["parents"] == [seed.CSV_DATASET]
    files = {f["path"].rsplit("/", 1)[1]: f["path"] for f in dataset["files"]}
    assert set(files) == {"analysis.ipynb", "analysis.ipynb.html", "analysis.ipynb.png"}
    # saved as it was seen: the notebook with the plot among its outputs, the HTML with it
    control = trial["control"]
    saved = json.loads(control.file(dataset["permId"], files["analysis.ipynb"]))
    outputs = [o for c in saved["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert any("image/png" in output.get("data", {}) for output in outputs)
    html = control.file(dataset["permId"], files["analysis.ipynb.html"])
    assert b'src="data:image/png;base64,' in html
    assert control.file(dataset["permId"], files["analysis.ipynb.png"]).startswith(b"\x89PNG")
    # the plot cell drew the CSV into the notebook and into a file
    assert notebook.locator(".jp-OutputArea-output img").count() >= 1
    plot = ["docker", "exec", f"{trial['name']}--4a-44oe", "test", "-s", "trial/analysis.ipynb.png"]
    assert subprocess.run(plot, timeout=60, check=False).returncode == 0
    # the ELN stand-in lists the new dataset
    eln.reload()
    assert eln.get_by_text("ANALYSIS_NOTEBOOK").count() == 1
    context.close()
