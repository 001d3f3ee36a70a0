"""Shared pytest fixtures. Each section belongs to one part of the test suite; edit only yours."""

# --- openbis_double -----------------------------------------------------------------------
# The openBIS test double (openbis_double/) as a real subprocess speaking HTTPS.

import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openbis_double import DoubleControl, seed
from openbis_double.process import start_openbis_double
from tests.hubprocess import JupyterHubProcess

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def openbis_double_factory(tmp_path_factory):
    """start(api_version="3.7", session_timeout=None) -> a new OpenbisDouble.

    Every double started through it stops at the end of the session."""
    started = []

    def start(api_version="3.7", session_timeout=None):
        directory = tmp_path_factory.mktemp(f"openbis-double-{api_version}")
        double = start_openbis_double(directory, api_version, session_timeout)
        started.append(double)
        return double

    yield start
    for double in started:
        double.stop()


@pytest.fixture(scope="session")
def openbis_double(openbis_double_factory):
    """The shared double (HTTPS on 127.0.0.1, api-version 3.7: fast download, v3 upload)."""
    return openbis_double_factory()


@pytest.fixture(scope="session")
def openbis_double_legacy(openbis_double_factory):
    """A second double reporting api-version 3.5: pyBIS downloads by plain GET and uploads
    through the query v1 ingestion service."""
    return openbis_double_factory(api_version="3.5")


@pytest.fixture
def clean_openbis_double(openbis_double):
    """The shared double after a reset: no sessions, no created datasets, zero counts."""
    openbis_double.control.reset()
    return openbis_double


# --- end openbis_double -------------------------------------------------------------------


# --- JupyterHub process ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub_factory(openbis_double, tmp_path_factory):
    """start(**env) -> a real JupyterHub + configurable-http-proxy with our config (extra
    environment on top) and the local-process spawner, checking tokens against the openBIS
    double. Every hub started through it stops at the end of the test module."""
    started = []

    def start(**env):
        hub = JupyterHubProcess(
            tmp_path_factory.mktemp("hub"), openbis_double.url, openbis_double.ca_file, **env
        ).start()
        started.append(hub)
        return hub

    yield start
    for hub in started:
        hub.stop_all_servers()
        hub.stop()


@pytest.fixture(scope="module")
def hub(hub_factory):
    """Our hub with its defaults, one per test module."""
    return hub_factory()


# --- browser ---------------------------------------------------------------------------------
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# --- images ---------------------------------------------------------------------------------
# Our images, built as an admin builds them (scripts/build: `make build` with the double's
# compose file), under the names `make up` uses: after `make test`, `make up` builds nothing.
# TEST_IMAGE_TAG (default latest) keeps test runs of several checkouts on one engine apart.
IMAGE_TAG = os.environ.get("TEST_IMAGE_TAG") or "latest"
IMAGES = {
    "JUPYTERHUB_HUB_IMAGE": f"openbis-jupyterhub/hub:{IMAGE_TAG}",
    "JUPYTERHUB_SINGLEUSER_IMAGE": f"openbis-jupyterhub/singleuser:{IMAGE_TAG}",
    "OPENBIS_DOUBLE_IMAGE": f"openbis-jupyterhub/openbis-double:{IMAGE_TAG}",
    "JUPYTERHUB_DOCKER_PROXY_IMAGE": f"openbis-jupyterhub/docker-proxy:{IMAGE_TAG}",
}
SINGLEUSER_IMAGE = IMAGES["JUPYTERHUB_SINGLEUSER_IMAGE"]
HUB_IMAGE = IMAGES["JUPYTERHUB_HUB_IMAGE"]
OPENBIS_DOUBLE_IMAGE = IMAGES["OPENBIS_DOUBLE_IMAGE"]
DOCKER_PROXY_IMAGE = IMAGES["JUPYTERHUB_DOCKER_PROXY_IMAGE"]


def admin_environment(**extra) -> dict:
    """The process environment as on an admin's shell: none of our settings (a developer's
    shell or .env must not leak in), the image names of this test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "OPENBIS_"))}
    env.pop("COMPOSE", None)
    return {**env, **IMAGES, **extra}


def build_images() -> dict:
    """Build the hub, single-user and openBIS double images as `make build` does; returns
    their names. Also used by the benchmarks."""
    compose = "docker compose -f compose.yaml -f compose.double.yaml --env-file /dev/null"
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build")],
        env=admin_environment(COMPOSE=compose, OPENBIS_URL="https://x.invalid"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/build failed:\n{result.stdout[-3000:]}{result.stderr[-5000:]}")
    return {
        "hub": HUB_IMAGE,
        "singleuser": SINGLEUSER_IMAGE,
        "openbis-double": OPENBIS_DOUBLE_IMAGE,
        "docker-proxy": DOCKER_PROXY_IMAGE,
    }


@pytest.fixture(scope="session")
def images():
    return build_images()


@pytest.fixture(scope="session")
def singleuser_image(images):
    return images["singleuser"]


@pytest.fixture(scope="session")
def openbis_double_image(images):
    return images["openbis-double"]


@pytest.fixture(scope="session")
def hub_image(images):
    return images["hub"]


# --- openBIS double in Docker ----------------------------------------------------------------
@dataclass
class DockerOpenbisDouble:
    """The double's image running on its own network as `openbis` (https://openbis:8443
    inside that network). `url`/`control` reach it from the host through a port published
    on 127.0.0.1; `ca_pem` is its CA certificate (text), `ca_file` the same on the host."""

    network: str
    container: str
    url: str
    ca_pem: str
    ca_file: Path
    control: DoubleControl
    url_in_network: str = "https://openbis:8443"
    users: dict = field(default_factory=lambda: dict(seed.USERS))
    seed: object = seed


def docker(*args, timeout=120, check=True):
    """Run the docker CLI; returns its stdout."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


@pytest.fixture(scope="session")
def openbis_double_container(openbis_double_image, tmp_path_factory):
    name = f"obtest-{uuid.uuid4().hex[:10]}"
    docker("network", "create", name)
    try:
        docker(
            "run", "-d", "--name", f"{name}-openbis", "--network", name,
            "--network-alias", "openbis", "-p", "127.0.0.1::8443", openbis_double_image,
        )  # fmt: skip
        host_port = docker("port", f"{name}-openbis", "8443/tcp").split()[0].rsplit(":", 1)[1]
        url = f"https://127.0.0.1:{host_port}"
        ca_file = tmp_path_factory.mktemp("openbis-double-docker") / "ca.pem"
        deadline = time.monotonic() + 60
        while True:  # bounded by the deadline: the CA exists once the server listens
            ca_pem = docker("exec", f"{name}-openbis", "cat", "/certs/ca.pem", check=False)
            if ca_pem:
                ca_file.write_text(ca_pem)
                control = DoubleControl(url, str(ca_file))
                try:
                    if control.login("admin", seed.USERS["admin"]):
                        control.reset()
                        break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                logs = docker("logs", f"{name}-openbis", check=False)
                raise RuntimeError(f"the openBIS double container never answered: {logs}")
            time.sleep(0.2)
        yield DockerOpenbisDouble(name, f"{name}-openbis", url, ca_pem, ca_file, control)
    finally:
        docker("rm", "-f", f"{name}-openbis", check=False)
        docker("network", "rm", name, check=False)


# --- compose stack ---------------------------------------------------------------------------
# compose.yaml + compose.double.yaml as an admin runs them, unique names (tests/compose_stack.py).
@pytest.fixture(scope="module")
def compose_stack(hub_image, singleuser_image, openbis_double_image, tmp_path_factory):
    """The stack up and healthy; everything it made (user containers and volumes too) is
    removed at the end of the module."""
    from tests.compose_stack import ComposeStack

    stack = ComposeStack(
        tmp_path_factory.mktemp("compose"), hub_image, singleuser_image, openbis_double_image
    )
    try:
        yield stack.up()
    finally:
        stack.remove()


@pytest.fixture(scope="module")
def hub_browser(browser, compose_stack):
    """Chromium that trusts the stack's test CA (by its key) and nothing more than usual."""
    pin = f"--ignore-certificate-errors-spki-list={compose_stack.spki_hash()}"
    chromium = browser.browser_type.launch(
        executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, pin]
    )
    yield chromium
    chromium.close()


# --- JupyterLab with the openBIS panel (lab_api.py, labextension/) ---------------------------
# A local `jupyter lab` (no hub, no Docker) with our server extension, a home of its own and
# the user's openBIS token where the hub would put it.
LABEXTENSION_BUILD = REPO_ROOT / "labextension" / "openbis_jupyterlab" / "labextension"


@dataclass
class LabServer:
    url: str  # http://127.0.0.1:PORT/
    token: str  # the Jupyter server's own token (not openBIS's)
    home: Path
    log_path: Path
    process: subprocess.Popen
    double: object
    user: str = "JDoe"

    def api(self, method, path, **kwargs):
        """A request to {url}openbis/api/{path} as the signed-in browser would make it."""
        import requests

        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}openbis/api/{path}", headers=headers, timeout=120, **kwargs
        )

    def sign_in(self, user=None):
        """What the hub does at sign-in: a fresh openBIS session token into ~/.pybis."""
        from openbis_jupyterhub.singleuser import save_token

        self.user = user or self.user
        token = self.double.control.login(self.user, self.double.users[self.user])
        save_token(self.double.url, token, home=self.home)
        return token

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def lab_environment(directory: Path) -> dict:
    """The environment of a Jupyter server that loads the built front end as the image's do
    (``JUPYTER_PATH``), without JupyterLab's news toast over the panel."""
    jupyter_path = directory / "jupyter-data"
    if LABEXTENSION_BUILD.is_dir():  # the built front end, as pip would place it
        target = jupyter_path / "labextensions" / "@openbis-jupyterhub" / "jupyterlab-openbis"
        target.parent.mkdir(parents=True)
        target.symlink_to(LABEXTENSION_BUILD)
    config_dir = directory / "jupyter-config" / "labconfig"
    config_dir.mkdir(parents=True)
    (config_dir / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}'
    )
    return {
        "JUPYTER_CONFIG_DIR": str(directory / "jupyter-config"),
        "JUPYTER_PATH": str(jupyter_path),
    }


def start_lab_server(directory: Path, double, **env) -> LabServer:
    import secrets
    import sys

    import requests

    from tests.hubprocess import free_port

    home = directory / "home"
    home.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    log_path = directory / "lab.log"
    environment = {
        **os.environ,
        "HOME": str(home),
        "OPENBIS_URL": double.url,
        "REQUESTS_CA_BUNDLE": double.ca_file,
        **lab_environment(directory),
        "JUPYTER_CONFIG_PATH": str(REPO_ROOT / "hub" / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(directory / "runtime"),
        **env,
    }
    environment.pop("OPENBIS_TOKEN", None)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={home}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
        "jupyterlab.NeverCheckForUpdate", "--ServerApp.disable_check_xsrf=False",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=home, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    server = LabServer(f"http://127.0.0.1:{port}/", token, home, log_path, process, double)
    deadline = time.monotonic() + 90
    while True:  # bounded by the deadline
        try:
            answer = requests.get(f"{server.url}api/status?token={token}", timeout=5)
            if answer.status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            server.stop()
            raise RuntimeError(f"jupyter lab did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def lab_server(openbis_double, tmp_path_factory):
    """One JupyterLab per test module, signed in to the shared double as JDoe."""
    server = start_lab_server(tmp_path_factory.mktemp("lab"), openbis_double)
    server.sign_in()
    yield server
    server.stop()


@pytest.fixture
def lab(lab_server):
    """The module's JupyterLab after a reset of the double (fresh datasets and counts) and a
    fresh sign-in of JDoe."""
    lab_server.double.control.reset()
    lab_server.sign_in("JDoe")
    return lab_server
