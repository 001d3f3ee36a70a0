"""Start the openBIS double (openbis_double/) as a subprocess, for tests and benchmarks alike."""

import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from openbis_double import seed
from openbis_double.control import DoubleControl
from tests.support import REPO_ROOT
from tests.support.processes import stop_process


@dataclass
class OpenbisDouble:
    """A running double: `url`, `ca_file` (trust it, never disable verification),
    `control` (DoubleControl), `users` (seed user -> password) and `seed` (the seed module
    with permIds, identifiers, paths and file bytes; see openbis_double/README.md)."""

    url: str
    ca_file: str
    control: DoubleControl
    api_version: str
    process: subprocess.Popen
    log_file: Path
    users: dict = field(default_factory=lambda: dict(seed.USERS))
    seed: object = seed

    def stop(self):
        stop_process(self.process, timeout=10)
        self.process.stdout.close()


def start_openbis_double(directory, api_version="3.7", session_timeout=None, host="127.0.0.1"):
    """Start `python -m openbis_double` (cwd: the repository root) on a free port (the server
    picks it: --port 0) of ``host`` (an address of this machine; its certificate names it)."""
    cert_dir = directory / "certs"
    log_file = directory / "double.log"
    command = [sys.executable, "-m", "openbis_double", "--port", "0", "--host", host]
    command += ["--san", host]
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
