"""Shared pytest fixtures. Each section belongs to one part of the test suite; edit only yours."""

# --- openbis_double -----------------------------------------------------------------------
# The openBIS test double (openbis_double/) as a real subprocess speaking HTTPS.

import os
import subprocess
import tempfile
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
TAG = os.environ.get("TEST_IMAGE_TAG", "latest")
SINGLEUSER_IMAGE = f"openbis-jupyterhub/singleuser:{TAG}"
OPENBIS_DOUBLE_IMAGE = f"openbis-jupyterhub/openbis-double:{TAG}"
HUB_IMAGE = f"openbis-jupyterhub/hub:{TAG}"
DOCKER_PROXY_IMAGE = f"openbis-jupyterhub/docker-proxy:{TAG}"


def build_images() -> dict:
    """Build the hub, single-user and openBIS double images as `make build` does; returns
    their names. Also used by the benchmarks."""
    with tempfile.TemporaryDirectory() as tmp:
        no_env_file = Path(tmp) / "empty.env"
        no_env_file.write_text("")  # a developer's .env must not change what the tests build
        compose = "docker compose -f compose.yaml -f compose.double.yaml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "OPENBIS_"))}
        env.update(COMPOSE=f"{compose} --env-file {no_env_file}", OPENBIS_URL="https://x.invalid")
        env.update(
            JUPYTERHUB_HUB_IMAGE=HUB_IMAGE,
            JUPYTERHUB_SINGLEUSER_IMAGE=SINGLEUSER_IMAGE,
            JUPYTERHUB_DOCKER_PROXY_IMAGE=DOCKER_PROXY_IMAGE,
            OPENBIS_DOUBLE_IMAGE=OPENBIS_DOUBLE_IMAGE,
        )
        result = subprocess.run(
            [str(REPO_ROOT / "scripts" / "build")],
            env=env,
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
