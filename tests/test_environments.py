"""Environment versions on the compose stack: two single-user images that differ in one
package version, the earlier one kept beside the current one (JUPYTERHUB_SINGLEUSER_IMAGES).
The earlier image is built here, cheaply: FROM our single-user image, with tabulate at another
version from a local wheel. An analysis saved in the earlier environment (a named server beside
JDoe's usual one) re-runs there with identical outputs through the hub's re-run link; re-opened
in the current one, the banner's report names the difference; both servers see the same files.
"""

import json
import re
import subprocess
import sys
import time
from urllib.parse import unquote

import nbformat
import pytest

from tests.support.compose_stack import ComposeStack
from tests.support.images import docker
from tests.support.jupyter_api import KernelSession

pytestmark = pytest.mark.docker

PACKAGE, OLD_VERSION = "tabulate", "0.9.0"  # the current image has 0.10.0
CELLS = [
    "from tabulate import tabulate\nprint(tabulate([['a', 1], ['b', 2]]))",
    "print(sum(range(10)))",
]


@pytest.fixture(scope="module")
def old_image(singleuser_image, tmp_path_factory):
    """Our single-user image with one package at another version (a wheel pip fetched here)."""
    context = tmp_path_factory.mktemp("old-image")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "-d", str(context), f"{PACKAGE}=={OLD_VERSION}"],
        check=True, timeout=300,
    )  # fmt: skip
    (context / "Dockerfile").write_text(
        f"FROM {singleuser_image}\nUSER root\nCOPY *.whl /tmp/\n"
        "RUN pip install --no-index --no-deps /tmp/*.whl && rm /tmp/*.whl\nUSER 1000:100\n"
    )
    name = f"{singleuser_image}-old"
    docker("build", "-q", "-t", name, str(context), timeout=600)
    yield name
    docker("rmi", name, check=False)


def wait_until_ready(stack, token, server, timeout=180):
    deadline = time.monotonic() + timeout
    while not (stack.api("/users/JDoe", token).json()["servers"].get(server) or {}).get("ready"):
        assert time.monotonic() < deadline, stack.logs()
        time.sleep(1)


def run(server_url, token, stack, folder) -> list[str]:
    kernel = KernelSession(server_url, token, ca_file=str(stack.ca_file), path=folder)
    try:
        results = [kernel.execute(code) for code in CELLS]
    finally:
        kernel.shutdown()
    assert all(error is None for _, error in results), results
    return [output for output, _ in results]


def test_an_analysis_reruns_in_the_environment_it_was_made_in(
    hub_image, singleuser_image, old_image, openbis_double_image, tmp_path
):
    stack = ComposeStack(
        tmp_path, hub_image, singleuser_image, openbis_double_image,
        JUPYTERHUB_SINGLEUSER_LABEL="2026.12",
        JUPYTERHUB_SINGLEUSER_IMAGES=f"2026.06={old_image}",
    )  # fmt: skip
    session = stack.session()
    try:
        stack.up()
        token = stack.api_token("JDoe")
        # JDoe's named server of "2026.06": the earlier image, beside the usual one
        started = stack.api("/users/JDoe/servers/env-2026-06", token, method="POST", json={})
        assert started.status_code in (201, 202), started.text
        wait_until_ready(stack, token, "env-2026-06")
        old_url = f"{stack.url}/user/JDoe/env-2026-06/"
        headers = {"Authorization": f"token {token}"}

        # the analysis, run in the earlier environment, saved through its contents API (which
        # records the environment in the notebook), then to openBIS from the panel's API
        outputs = run(old_url, token, stack, "")
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        for code, text in zip(CELLS, outputs, strict=True):
            cell = nbformat.v4.new_code_cell(code)
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
            nb.cells.append(cell)
        body = {"type": "notebook", "format": "json", "content": nb}
        put = session.put(old_url + "api/contents/analysis.ipynb", json=body, headers=headers)
        assert put.status_code == 201, put.text
        saved = session.post(
            old_url + "openbis/api/datasets", headers=headers, timeout=120,
            json={"notebook": "analysis.ipynb", "owner": {"kind": "sample",
                  "id": "/LAB/PROJ/SAMPLE1"}, "html": False},
        )  # fmt: skip
        assert saved.status_code == 201, saved.text
        perm_id = saved.json()["permId"]

        # the re-run link: the environment it was made in is kept, so the user picks
        signed_in = session.get(
            f"{stack.url}/hub/login", params={"token": stack.login("JDoe")}, timeout=120
        )
        assert signed_in.status_code == 200
        link = f"{stack.url}/hub/openbis-notebook/open/{perm_id}"
        page = session.get(link, timeout=60)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        choice = session.post(link, data={"_xsrf": xsrf}, allow_redirects=False, timeout=600)
        assert choice.status_code == 200, choice.text
        assert 'id="openbis-saved-environment">2026.06<' in choice.text
        saved_url = re.search(r'id="openbis-open-saved"[^>]*href="([^"]+)"', choice.text)
        current_url = re.search(r'id="openbis-open-current"[^>]*href="([^"]+)"', choice.text)
        saved_url = saved_url.group(1).replace("&amp;", "&")
        opened = session.get(stack.url + saved_url, timeout=120)
        assert opened.status_code == 200 and "JupyterLab" in opened.text
        path = unquote(opened.url.split("/lab/tree/", 1)[1])
        folder, name = path.rsplit("/", 1)
        assert opened.url.startswith(f"{old_url}lab/tree/")
        assert name == "analysis.ipynb"
        assert current_url.group(1) == f"/user/JDoe/lab/tree/{path.replace(' ', '%20')}"

        # there: identical outputs, and the same environment
        assert run(old_url, token, stack, folder) == outputs
        report = session.get(
            old_url + "openbis/api/environment", params={"path": path}, headers=headers
        ).json()
        assert report["saved"]["label"] == "2026.06" and report["current"]["label"] == "2026.06"
        assert report["differences"] == {
            "python": None, "image": None, "changed": [], "missing": [], "added": [],
        }  # fmt: skip
        # in the current environment: the difference named
        current = f"{stack.url}/user/JDoe/"
        report = session.get(
            current + "openbis/api/environment", params={"path": path}, headers=headers
        ).json()
        assert report["differences"]["changed"] == [
            {"name": PACKAGE, "saved": OLD_VERSION, "current": "0.10.0"}
        ]
        assert report["differences"]["image"][0].startswith(f"2026.06 ({old_image})")
        assert report["differences"]["image"][1].startswith(f"2026.12 ({singleuser_image})")
        # both servers, one home
        listings = [
            sorted(f["name"] for f in session.get(
                url + f"api/contents/{folder}", headers=headers, timeout=60
            ).json()["content"])
            for url in (old_url, current)
        ]  # fmt: skip
        assert listings[0] == listings[1] and "analysis.ipynb" in listings[0]
        record = json.loads(session.get(old_url + f"api/contents/{path}", headers=headers).text)[
            "content"
        ]["metadata"]["openbis"]["environment"]
        assert record["imageId"].startswith("sha256:")
        assert record["r"]["version"] and record["octave"]["version"]  # R and Octave too
    finally:
        stack.remove()
