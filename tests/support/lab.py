"""A local `jupyter lab` (no hub, no Docker) with our server extension, a home of its own and
the user's openBIS token where the hub would put it (lab_api.py, labextension/)."""

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO_ROOT
from tests.support.processes import free_port, stop_process

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
        stop_process(self.process)


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
