"""Shared pytest fixtures, and nothing else: what they build on is tests/support/, which tests
and benchmarks import. Each section belongs to one part of the test suite; edit only yours."""

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openbis_double import DoubleControl, seed
from tests.support.double import start_openbis_double
from tests.support.hubprocess import JupyterHubProcess
from tests.support.images import build_images, docker
from tests.support.lab import start_lab_server

# --- openbis_double -----------------------------------------------------------------------
# The openBIS test double (openbis_double/) as a real subprocess speaking HTTPS.


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
@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# --- images (tests/support/images.py) ------------------------------------------------------
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
# compose.yaml + compose.double.yaml as an admin runs them, unique names
# (tests/support/compose_stack.py).
@pytest.fixture(scope="module")
def compose_stack(hub_image, singleuser_image, openbis_double_image, tmp_path_factory):
    """The stack up and healthy; everything it made (user containers and volumes too) is
    removed at the end of the module."""
    from tests.support.compose_stack import ComposeStack

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
    from tests.support.browser import CHROMIUM_ARGS

    pin = f"--ignore-certificate-errors-spki-list={compose_stack.spki_hash()}"
    chromium = browser.browser_type.launch(
        executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, pin]
    )
    yield chromium
    chromium.close()


# --- JupyterLab with the openBIS panel (tests/support/lab.py) -------------------------------
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
