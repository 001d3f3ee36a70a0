"""The single-user image: real image, real containers, real kernels, the openBIS double in
Docker on the same network (https://openbis:8443, its own CA handed over as OPENBIS_CA_CERT)."""

import hashlib
import json
import re
import subprocess
import textwrap
import uuid
from pathlib import PurePosixPath

import nbformat
import pytest
from openbis_jupyterhub.hub import templates
from openbis_jupyterhub.singleuser.session_hint import HINT

from tests.support.eln import eln_notebook
from tests.support.images import docker
from tests.support.singleuser import HUB_STAND_IN, hub_environment

pytestmark = pytest.mark.docker

KERNELS = {"bash": "Bash", "ir": "R", "octave": "Octave", "python3": "Python 3", "sos": "SoS"}
USER = "JDoe"

# Runs in the container, first in every command below: takes the environment the user's
# server gives its kernels and terminals (that process's environment), as `docker exec` alone
# would not.
SERVER_ENVIRONMENT = textwrap.dedent(
    """
    import os
    from pathlib import Path

    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"jupyterhub-singleuser" in (proc / "cmdline").read_bytes():
                environ = (proc / "environ").read_bytes().split(b"\\0")
                break
        except OSError:
            pass
    env = dict(kv.decode().split("=", 1) for kv in environ if b"=" in kv)
    os.environ.clear()
    os.environ.update(env)
    """
)
# Executes a notebook with nbclient; prints the executed notebook as JSON.
RUN_NOTEBOOK = SERVER_ENVIRONMENT + textwrap.dedent(
    """
    import sys
    import nbformat
    from nbclient import NotebookClient

    path = Path(sys.argv[1])
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, allow_errors=sys.argv[2] == "1",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(nb, sys.stdout)
    """
)


# A request to the user's server as a browser of the user makes it; prints status, then body.
SERVER_REQUEST = textwrap.dedent(
    """
    import sys, urllib.error, urllib.request

    method, url = sys.argv[1:]
    request = urllib.request.Request(
        url, method=method, data=b"{}" if method == "POST" else None,
        headers={"Authorization": "token any"},  # the hub stand-in: the user's token
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    print(status)
    sys.stdout.write(body.decode())
    """
)
# Asks a new Python kernel for completions as the notebook's Tab key does; prints the matches
# of each code (cursor at its end) as one JSON list.
COMPLETE = SERVER_ENVIRONMENT + textwrap.dedent(
    """
    import json, sys
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        matches = [
            client.complete(code, len(code), reply=True, timeout=60)["content"]["matches"]
            for code in sys.argv[1:]
        ]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    print(json.dumps(matches))
    """
)
# Runs a command as a terminal of the user's server would.
RUN_COMMAND = SERVER_ENVIRONMENT + "import sys\nos.execvp(sys.argv[1], sys.argv[1:])\n"
SERVER_COMMAND = ["bash", "-c", 'python -c "$0" & exec start-singleuser.sh', HUB_STAND_IN]


class UserServer:
    """One container of the image, started like the hub's spawner starts it."""

    def __init__(self, image, double, volume=None):
        self.double = double
        self.name = f"{double.network}-{uuid.uuid4().hex[:8]}"
        env = {
            **hub_environment(USER),
            "OPENBIS_URL": double.url_in_network,
            "OPENBIS_CA_CERT": double.ca_pem,
        }
        args = ["run", "-d", "--name", self.name, "--network", double.network]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        if volume:
            args += ["-v", f"{volume}:/home/jovyan"]
        docker(*args, image, *SERVER_COMMAND)
        self.wait_until_ready()
        self.fresh_session()  # the token arrives after the start, as the hub hands it over

    def wait_until_ready(self):
        probe = (
            "import time, urllib.request\n"
            "for _ in range(300):\n"
            "    try:\n"
            f"        urllib.request.urlopen('http://127.0.0.1:8888/user/{USER}/api', timeout=2)\n"
            "        break\n"
            "    except OSError:\n"
            "        time.sleep(0.1)\n"
            "else:\n"
            "    raise SystemExit('server not ready')\n"
        )
        result = self.exec("python", "-c", probe, check=False)
        if result.returncode != 0:
            logs = docker("logs", self.name, check=False, timeout=30)
            raise RuntimeError(f"the user's server did not start: {result.stderr}\n{logs}")

    def exec(self, *command, input=None, check=True, workdir="/home/jovyan"):
        result = subprocess.run(
            ["docker", "exec", "-i", "-w", workdir, self.name, *command],
            input=input,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{command} failed ({result.returncode}): {result.stderr}")
        return result

    def request(self, method, path):
        """``method`` ``path`` (below the server's URL) as the user's browser; (status, body)."""
        url = f"http://127.0.0.1:8888/user/{USER}/{path}"
        status, _, body = self.exec("python", "-c", SERVER_REQUEST, method, url).stdout.partition(
            "\n"
        )
        return int(status), body

    def run(self, *command, check=True):
        """`command` in the user's server's environment (openbis-data, as from a kernel)."""
        return self.exec("python", "-c", RUN_COMMAND, *command, check=check)

    def write(self, path, text):
        self.exec("mkdir", "-p", str(PurePosixPath(path).parent))
        self.exec("sh", "-c", 'cat > "$1"', "-", path, input=text)

    def read(self, path):
        return self.exec("cat", path).stdout

    def run_notebook(self, path, allow_errors=False):
        """Execute the notebook at `path` (in the container) with nbclient; the result."""
        result = self.exec("python", "-c", RUN_NOTEBOOK, path, "1" if allow_errors else "0")
        return nbformat.reads(result.stdout, as_version=4)

    def run_cells(self, kernel, *sources, allow_errors=False):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": KERNELS[kernel]}
        path = f"/home/jovyan/work/{uuid.uuid4().hex[:8]}.ipynb"
        self.write(path, nbformat.writes(nb))
        return self.run_notebook(path, allow_errors)

    def fresh_session(self):
        """A new openBIS session in the token file, as the hub's token push leaves it."""
        self.token = self.double.control.login(USER, self.double.users[USER])
        self.exec(
            "sh",
            "-c",
            "umask 077 && mkdir -p ~/.pybis && cat > ~/.pybis/openbis.token",
            input=self.token,
        )

    def remove(self):
        docker("rm", "-f", self.name, check=False)


def text_of(cell):
    """Everything a user sees below a cell, as text."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            parts.append("\n".join(output.traceback))
    return "".join(parts)


@pytest.fixture(scope="module")
def server(singleuser_image, openbis_double_container):
    server = UserServer(singleuser_image, openbis_double_container)
    yield server
    server.remove()


@pytest.fixture
def double(openbis_double_container):
    openbis_double_container.control.reset()
    return openbis_double_container


def test_the_five_kernels_users_know(server):
    specs = json.loads(server.exec("jupyter", "kernelspec", "list", "--json").stdout)
    shown = {name: spec["spec"]["display_name"] for name, spec in specs["kernelspecs"].items()}
    assert shown == KERNELS
    assert "python2" not in server.exec("ls", "/usr/bin").stdout.split()


def test_the_openbis_panel_is_prebuilt_enabled_and_ok(server):
    listing = server.exec("jupyter", "labextension", "list")
    # jupyter prints the list to stderr, in colour even without a terminal
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"@openbis-jupyterhub/jupyterlab-openbis v\S+ enabled OK", text), text
    assert "jupyter lab build" not in text  # nothing to build at run time


def test_jupyterlab_notebook_7_and_a_terminal_open(server):
    status, lab = server.request("GET", "lab")
    assert status == 200
    page = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab, re.S)
    config = json.loads(page.group(1))
    extensions = {extension["name"] for extension in config["federated_extensions"]}
    assert {
        "@openbis-jupyterhub/jupyterlab-openbis",
        "@jupyter-widgets/jupyterlab-manager",
        "jupyterlab-sos",
        "@jupyter-notebook/lab-extension",
    } <= extensions
    # the extensions are prebuilt and the venv is read-only: no "Build recommended" prompt,
    # and no prompt to fetch Jupyter news from the internet
    assert config["buildCheck"] is False and config["buildAvailable"] is False
    assert config["news"] == {"disabled": True}
    assert server.request("GET", "tree")[0] == 200  # Notebook 7
    status, terminal = server.request("POST", "api/terminals")
    assert status == 200 and json.loads(terminal)["name"]


def test_the_language_menu_offers_english(server):
    # JupyterLab's Settings > Language lists what this answers
    status, body = server.request("GET", "lab/api/translations")
    assert status == 200
    assert json.loads(body)["data"] == {"en": {"displayName": "English", "nativeName": "English"}}


def test_tab_completes_modules_not_yet_imported_and_builtins(server):
    expected = {
        "import requests\nrequests.ge": "get",
        "import pybis\npybis.Open": "Openbis",
        '"abc".up': "upper",
        "import os\nos.path.jo": "join",
    }
    result = server.exec("python", "-c", COMPLETE, *expected)
    matches = dict(zip(expected, json.loads(result.stdout.splitlines()[-1]), strict=True))
    assert {code: word in matches[code] for code, word in expected.items()} == dict.fromkeys(
        expected, True
    ), matches


@pytest.mark.parametrize(
    "kernel, code",
    [
        ("python3", "print(6 * 7)"),
        ("ir", "cat(6 * 7)"),
        ("octave", "disp(6 * 7)"),
        ("bash", "echo $((6 * 7))"),
        ("sos", "print(6 * 7)"),
    ],
)
def test_each_kernel_runs_a_cell(server, kernel, code):
    nb = server.run_cells(kernel, code)
    assert text_of(nb.cells[0]).strip() == "42"


PNG_MAGIC = "89504e470d0a1a0a"


@pytest.mark.parametrize(
    "kernel, code, inline",
    [
        (
            "python3",
            "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.savefig('plot-python3.png')",
            "image/png",
        ),
        (
            "sos",
            "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.savefig('plot-sos.png')",
            "image/png",
        ),
        (
            "ir",
            "png('plot-ir.png')\nplot(c(1, 4, 9))\ninvisible(dev.off())\nplot(c(1, 4, 9))",
            "image/png",
        ),
        # no X server: the gnuplot toolkit; PNG files through gnuplot's cairo terminal
        (
            "octave",
            "plot([1 4 9]); title('squares');\nprint -dpngcairo plot-octave.png",
            "image/svg+xml",
        ),
    ],
)
def test_each_kernel_plots_inline_and_to_a_png_file(server, kernel, code, inline):
    assert "DISPLAY" not in server.run("env").stdout
    nb = server.run_cells(kernel, code)
    (cell,) = nb.cells
    assert [o.output_type for o in cell.outputs if o.output_type == "error"] == []
    assert any(inline in o.get("data", {}) for o in cell.outputs), cell.outputs
    assert "warning" not in text_of(cell)
    head = server.exec(
        "python", "-c", "import sys; print(open(sys.argv[1], 'rb').read(8).hex())",
        f"work/plot-{kernel}.png",
    ).stdout.strip()  # fmt: skip
    assert head == PNG_MAGIC


def test_sos_passes_a_python_variable_to_r_and_octave(server):
    # The results go to files: SoS may drop the output of the first cells it runs in a
    # freshly started R subkernel (see the image README), not their effects.
    server.run_cells(
        "sos",
        "%use Python3",
        "readings = [1.5, 2.5, 4.0]",
        "%use R",
        '%get readings --from Python3\nwriteLines(format(sum(readings)), "sos-r.txt")',
        "%use Octave",
        "%get readings --from Python3\nfid = fopen('sos-octave.txt', 'w'); "
        "fprintf(fid, '%g', sum(readings)); fclose(fid);",
    )
    assert server.read("work/sos-r.txt").strip() == "8"
    assert server.read("work/sos-octave.txt").strip() == "8"


def test_openbis_without_arguments_uses_the_users_session(server, double):
    server.fresh_session()
    nb = server.run_cells(
        "python3",
        "from pybis import Openbis\no = Openbis()\n"
        "print(o.get_session_info().userName, o.verify_certificates)",
    )
    assert text_of(nb.cells[0]).split() == [USER, "True"]
    modes = server.exec("stat", "-c", "%a %U", ".pybis", ".pybis/openbis.token").stdout.split()
    assert modes == ["700", "jovyan", "600", "jovyan"]
    bundle = server.exec("stat", "-c", "%a %U", ".pybis/ca-bundle.pem").stdout.split()
    assert bundle == ["600", "jovyan"]


def test_docker_exec_shells_trust_the_openbis_ca(server, double):
    """An admin's `docker exec` shell (no start hook of its own) reaches openBIS too."""
    server.fresh_session()
    info = server.exec("openbis-data", "info", double.seed.CSV_DATASET).stdout
    assert f"permId: {double.seed.CSV_DATASET}" in info


def test_openbis_data_command(server, double):
    server.fresh_session()
    seed = double.seed
    info = server.run("openbis-data", "info", seed.CSV_DATASET).stdout
    assert f"experiment: {seed.EXPERIMENT}" in info
    assert seed.CSV_PATH in info

    paths = server.run("openbis-data", "download", seed.CSV_DATASET, "dl").stdout.split()
    assert paths == [f"dl/{seed.CSV_DATASET}/{seed.CSV_PATH}"]
    assert server.read(f"dl/{seed.CSV_DATASET}/{seed.CSV_PATH}").encode() == seed.CSV_BYTES
    # a second download keeps the user's edits
    server.write(f"/home/jovyan/dl/{seed.CSV_DATASET}/{seed.CSV_PATH}", "edited")
    server.run("openbis-data", "download", seed.CSV_DATASET, "dl")
    assert server.read(f"dl/{seed.CSV_DATASET}/{seed.CSV_PATH}") == "edited"

    server.write("/home/jovyan/result.txt", "result")
    perm_id = server.run(
        "openbis-data", "save", "--object", seed.SAMPLE, "--parents", seed.CSV_DATASET,
        "--name", "CLI result", "--notes", "-from the CLI-", "result.txt",
    ).stdout.strip()  # fmt: skip
    (created,) = double.control.created_datasets()
    assert created["permId"] == perm_id
    assert created["type"] == "ANALYSIS_NOTEBOOK"
    assert created["owner"]["sample"]["identifier"] == seed.SAMPLE
    assert created["parents"] == [seed.CSV_DATASET]
    assert created["properties"]["$NAME"] == "CLI result"
    assert created["properties"]["NOTES"] == "-from the CLI-"
    assert double.control.file(perm_id, created["files"][0]["path"]) == b"result"

    missing = server.run("openbis-data", "save", "--object", seed.SAMPLE, "nope.txt", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "openbis-data: nope.txt: no such file"


def test_expired_session_gets_a_hint_not_a_token(server, double):
    server.fresh_session()
    double.control.expire(token=server.token)
    result = server.run("openbis-data", "info", double.seed.CSV_DATASET, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"openbis-data: {HINT}"
    assert server.token not in result.stdout + result.stderr

    nb = server.run_cells(
        "python3",
        f"from pybis import Openbis\nOpenbis().get_dataset('{double.seed.CSV_DATASET}')",
        allow_errors=True,
    )
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.ename == "ValueError"
    assert HINT in "\n".join(error.traceback)
    assert "get_dataset" in "\n".join(error.traceback)  # the original traceback stays


def test_a_session_that_dies_mid_notebook_leaves_no_token_in_the_output(server, double):
    server.fresh_session()
    nb = server.run_cells(
        "python3",
        "import os, requests\nfrom pybis import Openbis\no = Openbis()\n"
        "expire = os.environ['OPENBIS_URL'] + '/__double__/expire'\n"
        "print(requests.post(expire, json={'token': o.token}).json())",
        f"o.get_dataset('{double.seed.CSV_DATASET}')",
        allow_errors=True,
    )
    assert text_of(nb.cells[0]).strip() == "{'expired': 1}"
    (error,) = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert HINT in "\n".join(error.traceback)
    # pyBIS prints the refused request, token included; the kernel shows it scrubbed
    assert "getDataSets" in text_of(nb.cells[1])
    assert server.token[-32:] not in json.dumps(nb.cells[1].outputs)


def created_dataset(double):
    (created,) = double.control.created_datasets()
    assert created["type"] == "ANALYSIS_NOTEBOOK"
    return created, {PurePosixPath(f["path"]).name: f for f in created["files"]}


def test_the_eln_notebook_runs_and_saves_its_result(server, double):
    server.fresh_session()
    seed = double.seed

    def perm_id(value):
        return {"permId": value}

    datasets = [
        {
            "permId": perm_id(seed.CSV_DATASET),
            "experiment": {"permId": perm_id(seed.EXPERIMENT_PERM_ID)},
        },
        {
            "permId": perm_id(seed.BINARY_DATASET),
            "sample": {"permId": perm_id(seed.SAMPLE_PERM_ID)},
        },
    ]
    owner = {"@type": "as.dto.sample.Sample", "identifier": {"identifier": seed.SAMPLE}}
    notebook = eln_notebook(datasets, owner, "Analysis.ipynb")
    server.write("/home/jovyan/ELN/Analysis.ipynb", json.dumps(notebook))

    nb = server.run_notebook("/home/jovyan/ELN/Analysis.ipynb", allow_errors=True)

    failed = [c for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))]
    # only the optional session-refresh cell, which sets a placeholder token by design
    assert len(failed) == 1 and "o.set_token(token=sessionToken)" in failed[0].source
    assert HINT in text_of(failed[0])
    for perm_id, path, data in [
        (seed.CSV_DATASET, seed.CSV_PATH, seed.CSV_BYTES),
        (seed.BINARY_DATASET, seed.BINARY_PATH, seed.BINARY_BYTES),
    ]:
        local = server.exec("sha256sum", f"ELN/{perm_id}/{path}").stdout.split()[0]
        assert local == hashlib.sha256(data).hexdigest()

    created, files = created_dataset(double)
    assert created["owner"]["sample"]["identifier"] == seed.SAMPLE
    assert sorted(created["parents"]) == sorted([seed.CSV_DATASET, seed.BINARY_DATASET])
    (history_cell,) = [
        c
        for c in notebook["cells"]
        if c["metadata"].get("code_cell_id") == "resultDatasetHistoryId"
    ]
    history_id = history_cell["source"][0].split("'")[1]
    assert created["properties"] == {
        "$NAME": "Name your dataset!",
        "NOTES": "Write some notes or leave empty this property!",
        "$HISTORY_ID": history_id,
    }
    assert set(files) == {"Analysis.ipynb", "Analysis.ipynb.html"}
    saved = double.control.file(created["permId"], files["Analysis.ipynb"]["path"])
    assert saved.decode() == server.read("ELN/Analysis.ipynb")


TEMPLATE_RUNS = [
    ("analysis_python3.ipynb", "object", {"requirements.txt", "runtime.txt"}),
    ("analysis_r.ipynb", "experiment", {"runtime.txt", "sessionInfo.txt"}),
    ("analysis_octave.ipynb", "object", {"runtime.txt", "ver.txt"}),
    ("analysis_bash.ipynb", "experiment", {"runtime.txt", "packages.txt"}),
    ("analysis_sos.ipynb", "object", {"runtime.txt", "requirements.txt", "sessionInfo.txt"}),
]


@pytest.mark.parametrize("template, owner_type, environment", TEMPLATE_RUNS)
def test_each_template_runs_and_saves_its_result(server, double, template, owner_type, environment):
    server.fresh_session()
    seed = double.seed
    owner_id = seed.SAMPLE if owner_type == "object" else seed.EXPERIMENT
    params = {
        "fileName": template,
        "datasetPermIds": [seed.CSV_DATASET, seed.BINARY_DATASET],
        "ownerType": owner_type,
        "ownerId": owner_id,
        "resultDatasetName": f"Result of {template}",
        "resultDatasetNotes": "Notes with 'quotes', \"double quotes\" and $dollars",
        "resultDatasetHistoryId": str(uuid.uuid4()),
    }
    # what the hub's template endpoint writes: the template plus one cell of literals
    shipped = nbformat.reads(server.read(f"templates/{template}"), as_version=4)
    notebook = templates.render(shipped, params)
    folder = f"/home/jovyan/runs/{template.removesuffix('.ipynb')}"
    server.write(f"{folder}/{template}", nbformat.writes(notebook))

    server.run_notebook(f"{folder}/{template}")

    created, files = created_dataset(double)
    kind = "sample" if owner_type == "object" else "experiment"
    assert created["owner"][kind]["identifier"] == owner_id
    assert created["parents"] == params["datasetPermIds"]
    assert created["properties"] == {
        "$NAME": params["resultDatasetName"],
        "NOTES": params["resultDatasetNotes"],
        "$HISTORY_ID": params["resultDatasetHistoryId"],
    }
    assert set(files) == {template, template + ".html"} | environment
    html = double.control.file(created["permId"], files[template + ".html"]["path"])
    assert b"<html" in html and b"Process your data here" in html
    downloaded = server.exec("sha256sum", f"{folder}/{seed.CSV_DATASET}/{seed.CSV_PATH}")
    assert downloaded.stdout.split()[0] == hashlib.sha256(seed.CSV_BYTES).hexdigest()


def test_templates_are_copied_once_and_edits_survive_restarts(
    singleuser_image, openbis_double_container
):
    volume = f"{openbis_double_container.network}-home"
    docker("volume", "create", volume)
    first = second = None
    try:
        first = UserServer(singleuser_image, openbis_double_container, volume=volume)
        shipped = sorted(first.exec("ls", "templates").stdout.split())
        assert {t for t, _, _ in TEMPLATE_RUNS} <= set(shipped)
        first.write("/home/jovyan/templates/analysis_python3.ipynb", "my edits")
        first.exec("rm", "templates/analysis_r.ipynb")
        first.remove()

        # a new container on the same home volume, as after a restart or image upgrade
        second = UserServer(singleuser_image, openbis_double_container, volume=volume)
        assert second.read("templates/analysis_python3.ipynb") == "my edits"
        assert sorted(second.exec("ls", "templates").stdout.split()) == shipped
    finally:
        for s in (first, second):
            if s:
                s.remove()
        docker("volume", "rm", volume, check=False)
