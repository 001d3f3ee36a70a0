"""The openBIS panel in a real JupyterLab, driven in Debian's Chromium (Playwright).

One user journey through our hub (configurable-http-proxy, local user servers, the openBIS
double): sign in with the ELN's link, see the session, browse to the sample dataset (keys and
mouse), download it into the file browser's folder, run a notebook on it, save the notebook
to openBIS with the dataset as parent (through the notebook's context menu), find the saved
dataset by its permId and re-open it from the panel, then open it through the hub link
/hub/openbis-notebook/open/<permId>, fetch its parent from the banner and Run All: identical
outputs. Also the expired-session hint and ipywidgets, in a local `jupyter lab`. Needs the
built extension (tests/run.sh builds it). No Docker.
"""

import copy
import json
import re
from urllib.parse import quote

import nbformat
import pytest
from openbis_jupyterhub.singleuser.session_hint import HINT
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from openbis_double import seed
from tests.support import REPO_ROOT
from tests.support.hubprocess import JupyterHubProcess
from tests.support.lab import LABEXTENSION_BUILD, lab_environment

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not LABEXTENSION_BUILD.is_dir(),
        reason="labextension not built: run tests/run.sh (or jlpm build:prod in labextension/)",
    ),
]

# the READMEs' pictures (labextension/docs/panel.png, rerun.png) are copies of these
SCREENSHOT = REPO_ROOT / "test-artifacts" / "openbis-panel.png"
RERUN_SCREENSHOT = REPO_ROOT / "test-artifacts" / "openbis-rerun.png"
ANALYSIS = [
    "import csv\nrows = list(csv.DictReader(open('measurements.csv')))\nlen(rows)",
    "mean = sum(float(r['signal_mv']) for r in rows) / len(rows)\nprint(f'mean {mean:.4f}')",
    "open('result.txt', 'w').write(f'{mean:.6f}\\n')",
]
TIMEOUT = 60_000


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    yield page
    artifacts = REPO_ROOT / "test-artifacts"  # the last view of each test, for failures
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / f"{request.node.name}.png"))
    context.close()


def open_lab(page, url):
    """Load JupyterLab from ``url`` and show the openBIS panel."""
    page.goto(url)
    for _ in range(3):
        page.locator('li[data-id="openbis-panel"]').wait_for()
        page.wait_for_load_state("networkidle")
        # on a busy machine JupyterLab may give up on its theme's stylesheet: load again
        if not page.locator(".jp-Dialog", has_text="Error Loading Theme").count():
            break
        page.reload()
    page.locator('li[data-id="openbis-panel"]').click()
    return page.locator("#openbis-panel")


def widen_right_sidebar(page, pixels):
    """Drag the splitter between the main area and the right sidebar to the left."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").last
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - pixels, y, steps=5)
    page.mouse.up()


def tree_item(panel, ident):
    return panel.locator(f'ul[role="tree"] li[data-id="{ident}"]')


def expand(panel, ident):
    item = tree_item(panel, ident)
    item.locator(":scope > .jp-OpenbisPanel-line > .jp-OpenbisPanel-toggle").click()
    return item


def line(item):
    return item.locator(":scope > .jp-OpenbisPanel-line")


def run_all(page):
    kernel = page.locator(".jp-Dialog", has_text="Select Kernel")
    if kernel.count():  # JupyterLab may ask once before the first run
        kernel.get_by_role("button", name="Select").click()
    page.locator(".jp-Notebook:visible").first.click()
    page.keyboard.press("Control+Shift+c")  # the command palette
    page.locator(".lm-CommandPalette-input").fill("Run All Cells")
    page.keyboard.press("Enter")


def until(page, action, done, tries=6, wait_ms=10_000):
    """Do `action` until `done` (a locator) shows: a run asked for while the kernel is still
    starting may be dropped on a busy machine. The actions here are safe to repeat."""
    for _ in range(tries - 1):
        action()
        try:
            done.wait_for(timeout=wait_ms)
            return
        except PlaywrightTimeout:
            pass
    action()
    done.wait_for()


def outputs(path):
    """Cell outputs without execution counts (a fresh kernel counts from 1 anyway)."""
    nb = nbformat.read(path, as_version=4)
    result = []
    for cell in nb.cells:
        cell_outputs = copy.deepcopy(cell.get("outputs", []))
        for output in cell_outputs:
            output.pop("execution_count", None)
        result.append(cell_outputs)
    return result


def save_notebook(page):
    page.locator(".jp-Notebook:visible").first.click()
    page.keyboard.press("Control+s")


@pytest.fixture(scope="module")
def lab_hub(openbis_double, tmp_path_factory):
    """Our hub (configurable-http-proxy, local user servers) whose user servers load the
    built panel, as the single-user image's do."""
    directory = tmp_path_factory.mktemp("lab-hub")
    hub = JupyterHubProcess(
        directory / "hub",
        openbis_double.url,
        openbis_double.ca_file,
        spawner_env=lab_environment(directory),
    ).start()
    yield hub
    hub.stop_all_servers()
    hub.stop()


def test_browse_download_run_save_open_by_hub_link_rerun(page, lab_hub, openbis_double):
    """The whole journey through the hub: the ELN's sign-in link, the panel (by mouse and
    keyboard), a run, Save to openBIS with a parent, Re-open from the panel, then the hub's
    link /hub/openbis-notebook/open/<permId> and Run All: identical outputs."""
    hub, double = lab_hub, openbis_double
    double.control.reset()
    study = hub.homes / "JDoe" / "study"
    study.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in ANALYSIS]
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
    }  # fmt: skip
    nbformat.write(nb, study / "analysis.ipynb")

    # signed in as the ELN does it; the hub starts the server on the way
    token = double.control.login("JDoe", double.users["JDoe"])
    next_url = quote("/user/JDoe/lab/tree/study?reset", safe="")
    panel = open_lab(page, f"{hub.url}/hub/login?token={token}&next={next_url}")
    assert token not in page.url
    page.locator(".jp-DirListing-item", has_text="analysis.ipynb").wait_for()  # in study/
    widen_right_sidebar(page, 160)
    status = panel.locator(".jp-OpenbisPanel-status")
    status.filter(has_text="Signed in to 127.0.0.1 as JDoe").wait_for()

    # browse with the keyboard (WAI-ARIA tree): Right opens, Right again goes in, Enter
    # toggles, Down moves; then with the mouse. Space > project > collection > dataset
    tree_item(panel, "LAB").focus()
    page.keyboard.press("ArrowRight")
    tree_item(panel, seed.PROJECT).wait_for()
    page.keyboard.press("ArrowRight")
    expect(tree_item(panel, seed.PROJECT)).to_be_focused()
    page.keyboard.press("Enter")
    experiment = tree_item(panel, seed.EXPERIMENT)
    experiment.wait_for()
    page.keyboard.press("ArrowDown")
    expect(experiment).to_be_focused()
    expect(experiment).to_have_attribute("tabindex", "0")  # the tree's one tab stop
    page.keyboard.press("ArrowLeft")  # up to the project, then back down, by mouse
    expect(tree_item(panel, seed.PROJECT)).to_be_focused()
    expand(panel, seed.EXPERIMENT)
    dataset = tree_item(panel, seed.CSV_DATASET)
    dataset.filter(has_text="Temperature log").wait_for()
    assert "RAW_DATA" in line(dataset).inner_text()
    assert experiment.get_attribute("aria-expanded") == "true"

    # download into the file browser's folder (study/)
    line(dataset).get_by_role("button", name="Download").click()
    panel.locator(".jp-OpenbisPanel-job").filter(has_text="saved study/measurements.csv").wait_for()
    assert (study / "measurements.csv").read_bytes() == seed.CSV_BYTES
    page.locator(".jp-DirListing-item", has_text="measurements.csv").wait_for()

    # run the notebook on it
    page.locator(".jp-DirListing-item", has_text="analysis.ipynb").dblclick()
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).first.wait_for()
    until(
        page,
        lambda: run_all(page),
        page.locator(".jp-Notebook:visible .jp-InputPrompt", has_text="[3]"),
    )
    page.locator(".jp-Notebook:visible .jp-OutputArea-output", has_text="mean ").wait_for()
    save_notebook(page)

    # Save to openBIS: target and parent picked in the tree, started from the context menu
    line(tree_item(panel, seed.SAMPLE)).get_by_role("button", name="Attach here").click()
    line(dataset).get_by_role("button", name="Parent").click()
    page.locator(".jp-Notebook:visible .jp-Cell").first.click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Save to openBIS…").click()
    form = panel.locator(".jp-OpenbisPanel-save")
    expect(form.get_by_role("button", name="Save to openBIS")).to_be_focused()  # prefilled
    assert form.get_by_label("Parent datasets (permIds)").input_value() == seed.CSV_DATASET
    form.get_by_label("Dataset name").fill("Browser analysis")
    page.locator(".jp-DirListing-item", has_text="result.txt").click()  # an output file
    form.get_by_role("button", name="Save to openBIS").click()
    message = form.locator(".jp-OpenbisPanel-message")
    message.filter(has_text="Saved as dataset").wait_for()
    perm_id = re.search(r"dataset (\S+) \(", message.inner_text())[1]
    [created] = double.control.created_datasets()
    assert created["permId"] == perm_id and created["parents"] == [seed.CSV_DATASET]
    assert created["properties"]["$NAME"] == "Browser analysis"
    names = sorted(f["path"].rsplit("/", 1)[-1] for f in created["files"])
    assert names == [
        "analysis.ipynb", "analysis.ipynb.html", "requirements.txt", "result.txt", "runtime.txt",
    ]  # fmt: skip
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.add_style_tag(content=".Toastify { display: none; }")  # the toast is not the panel
    panel.screenshot(path=str(SCREENSHOT))

    # find it by permId and re-open it from the panel: new folder, notebook, banner
    panel.get_by_label("Search openBIS by code, permId or name").fill(perm_id)
    panel.get_by_role("button", name="Search", exact=True).click()
    found = panel.locator(f'ul[aria-label="Search results"] li[data-id="{perm_id}"]')
    assert "ANALYSIS_NOTEBOOK" in line(found).inner_text()
    line(found).get_by_role("button", name="Re-open").click()
    banner = page.locator(".jp-OpenbisBanner:visible")
    banner.filter(has_text=f"Re-opened from openBIS dataset {perm_id}").wait_for()
    assert "Same environment: no differences." in banner.inner_text()
    assert (hub.homes / "JDoe" / perm_id / "analysis.ipynb").is_file()

    # the hub link, as the ELN or an email has it: confirm, then JupyterLab opens the copy in
    # a new folder with the banner; its parent is fetched from the banner
    page.goto(f"{hub.url}/hub/openbis-notebook/open/{perm_id}")
    expect(page.locator("#openbis-dataset")).to_have_text(perm_id)
    page.get_by_role("button", name="Open the analysis").click()
    page.wait_for_url(re.compile(f".*/user/JDoe/lab/tree/{perm_id}%202/analysis.ipynb"))
    reopened = hub.homes / "JDoe" / f"{perm_id} 2"
    assert (reopened / "analysis.ipynb").is_file() and not (reopened / "measurements.csv").exists()
    banner = page.locator(".jp-OpenbisBanner:visible")
    banner.filter(has_text=f"Re-opened from openBIS dataset {perm_id}").wait_for()
    assert "Same environment: no differences." in banner.inner_text()
    banner.get_by_role("button", name="Fetch parent datasets (1)").click()
    banner.get_by_role("button", name="Parent datasets fetched").wait_for()
    assert (reopened / "measurements.csv").read_bytes() == seed.CSV_BYTES

    # clear the outputs it came with, Run All, compare with the first run
    assert outputs(reopened / "analysis.ipynb") == outputs(study / "analysis.ipynb")
    page.locator(".jp-Notebook:visible").first.click()
    page.keyboard.press("Control+Shift+c")
    page.locator(".lm-CommandPalette-input").fill("Clear Outputs of All Cells")
    page.keyboard.press("Enter")
    page.locator(".jp-Notebook:visible .jp-OutputArea-output").first.wait_for(state="detached")
    until(
        page,
        lambda: run_all(page),
        page.locator(".jp-Notebook:visible .jp-InputPrompt", has_text="[3]"),
    )
    page.locator(".jp-Notebook:visible .jp-OutputArea-output", has_text="mean ").wait_for()
    save_notebook(page)
    rerun = None
    for _ in range(50):  # until the save reached the disk
        rerun = outputs(reopened / "analysis.ipynb")
        if all(rerun):
            break
        page.wait_for_timeout(200)
    assert rerun == outputs(study / "analysis.ipynb")
    assert json.loads((reopened / ".openbis-dataset.json").read_text())["permId"] == perm_id
    page.screenshot(path=str(RERUN_SCREENSHOT))


def test_expired_session_shows_the_hint(page, lab):
    lab.double.control.expire(user="JDoe")
    panel = open_lab(page, f"{lab.url}lab?token={lab.token}&reset")
    panel.locator(".jp-OpenbisPanel-status", has_text="Not signed in to 127.0.0.1").wait_for()
    assert panel.locator(".jp-OpenbisPanel-hint").inner_text() == HINT
    lab.sign_in()
    panel.get_by_role("button", name="Refresh").click()
    panel.locator(".jp-OpenbisPanel-status", has_text="as JDoe").wait_for()
    assert panel.locator(".jp-OpenbisPanel-hint").is_hidden()


@pytest.mark.parametrize("ui", ["lab/tree", "notebooks"], ids=["jupyterlab", "notebook7"])
def test_ipywidgets_work_in_jupyterlab_and_notebook_7(page, lab, ui):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import ipywidgets as w\n"
            "slider = w.IntSlider(value=7, description='Seven')\n"
            "label = w.Label()\n"
            "w.dlink((slider, 'value'), (label, 'value'), transform=lambda v: f'got {v}')\n"
            "w.VBox([slider, label])"
        )
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
    }  # fmt: skip
    nbformat.write(nb, lab.home / f"widgets-{ui.replace('/', '-')}.ipynb")
    page.goto(f"{lab.url}{ui}/widgets-{ui.replace('/', '-')}.ipynb?token={lab.token}&reset")
    prompt = page.locator(".jp-Notebook:visible .jp-Cell .jp-InputPrompt").first
    prompt.wait_for()
    page.wait_for_load_state("networkidle")
    kernel = page.locator(".jp-Dialog", has_text="Select Kernel")
    if kernel.count():
        kernel.get_by_role("button", name="Select").click()
    slider = page.locator(".widget-slider", has_text="Seven")

    def run_cell():
        prompt.click()
        page.keyboard.press("Control+Enter")

    until(page, run_cell, slider)
    assert slider.locator(".widget-readout").inner_text() == "7"
    slider.locator(".widget-readout").fill("9")  # the readout is editable: a round trip
    slider.locator(".widget-readout").press("Enter")
    page.locator(".widget-label", has_text="got 9").wait_for()


@pytest.mark.parametrize("ui", ["lab/tree", "notebooks"], ids=["jupyterlab", "notebook7"])
def test_run_all_a_cell_reading_its_notebook_finds_the_outputs_above(page, lab, ui):
    """As the ELN's notebook writes its HTML copy: a cell reads the notebook's own file.
    After Run All that file holds the outputs of every cell above it."""
    name = f"reads-itself-{ui.replace('/', '-')}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("print('first output')"),
        nbformat.v4.new_code_cell("6 * 7"),
        nbformat.v4.new_code_cell(
            f"import nbformat\nsaved = nbformat.read({name!r}, as_version=4)\n"
            "print([o.get('text') or o['data']['text/plain'] for c in saved.cells "
            "for o in c.outputs])"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
    }  # fmt: skip
    nbformat.write(nb, lab.home / name)
    page.goto(f"{lab.url}{ui}/{name}?token={lab.token}&reset")
    page.locator(".jp-Notebook:visible .jp-Cell .jp-InputPrompt").first.wait_for()
    page.wait_for_load_state("networkidle")
    read = page.locator(".jp-OutputArea-output", has_text="['first output")

    def run_all_cells():
        kernel = page.locator(".jp-Dialog", has_text="Select Kernel")
        if kernel.count():  # JupyterLab may ask once before the first run
            kernel.get_by_role("button", name="Select").click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    until(page, run_all_cells, read)
    assert read.inner_text().strip() == r"['first output\n', '42']"
