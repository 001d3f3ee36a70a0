"""Shared pytest fixtures. Each section belongs to one part of the test suite; edit only yours."""

# --- openbis_double -----------------------------------------------------------------------
# The openBIS test double (tests/openbis_double) as a real subprocess speaking HTTPS.

import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hubprocess import JupyterHubProcess
from openbis_double import DoubleControl, seed

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class OpenbisDouble:
    """A running double: `url`, `ca_file` (trust it, never disable verification),
    `control` (DoubleControl), `users` (seed user -> password) and `seed` (the seed module
    with permIds, identifiers, paths and file bytes; see tests/openbis_double/README.md)."""

    url: str
    ca_file: str
    control: DoubleControl
    api_version: str
    process: subprocess.Popen
    log_file: Path
    users: dict = field(default_factory=lambda: dict(seed.USERS))
    seed: object = seed

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process.stdout.close()


def _start_openbis_double(directory, api_version="3.7", session_timeout=None):
    """Start `python -m tests.openbis_double` on a free port (the server picks it: --port 0)."""
    cert_dir = directory / "certs"
    log_file = directory / "double.log"
    command = [sys.executable, "-m", "tests.openbis_double", "--port", "0"]
    command += ["--api-version", api_version, "--cert-dir", str(cert_dir)]
    if session_timeout is not None:
        command += ["--session-timeout", str(session_timeout)]
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True
        )
    # The first stdout line names the URL ("openbis-double listening on https://...").
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""
    if "listening on " not in line:
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(f"openBIS double did not start: {log_file.read_text()!r}")
    url = line.split("listening on ", 1)[1].split()[0]
    ca_file = str(cert_dir / "ca.pem")
    control = DoubleControl(url, ca_file)
    double = OpenbisDouble(url, ca_file, control, api_version, process, log_file)
    deadline = time.monotonic() + 30
    while True:  # bounded by the deadline
        try:
            if control.login("admin", seed.USERS["admin"]):
                control.reset()  # forget the probe session
                return double
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            double.stop()
            raise RuntimeError(f"openBIS double never answered: {log_file.read_text()!r}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def openbis_double_factory(tmp_path_factory):
    """start(api_version="3.7", session_timeout=None) -> a new OpenbisDouble.

    Every double started through it stops at the end of the session."""
    started = []

    def start(api_version="3.7", session_timeout=None):
        directory = tmp_path_factory.mktemp(f"openbis-double-{api_version}")
        double = _start_openbis_double(directory, api_version, session_timeout)
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
def hub(openbis_double, tmp_path_factory):
    """A real JupyterHub + configurable-http-proxy with our config and the local-process
    spawner, checking tokens against the openBIS double. One per test module."""
    hub = JupyterHubProcess(
        tmp_path_factory.mktemp("hub"), openbis_double.url, openbis_double.ca_file
    ).start()
    yield hub
    hub.stop_all_servers()
    hub.stop()


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
