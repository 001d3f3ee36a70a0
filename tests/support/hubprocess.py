"""A real JupyterHub process (with configurable-http-proxy) for tests, using our config.

It loads hub/jupyterhub_config.py unchanged, from the environment, and only swaps
DockerSpawner for JupyterHub's local-process spawner (homes under the test's folder).
"""

import os
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support import REPO_ROOT
from tests.support.processes import free_port, stop_process

VENV_BIN = Path(sys.executable).parent


TEST_CONFIG = """
load_subconfig({config!r})
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = ["configurable-http-proxy"]
c.JupyterHub.services.append({{"name": "tests", "api_token": {api_token!r}}})
c.JupyterHub.load_roles.append({{"name": "tests", "services": ["tests"],
    "scopes": ["admin:users", "admin:servers", "admin:auth_state", "access:servers"]}})
"""
# the local-process spawner in place of the configured one (local_spawner=True)
LOCAL_SPAWNER_CONFIG = """
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]  # CI runs as root; the image runs servers as jovyan
c.Spawner.http_timeout = 120
c.Spawner.default_url = "/lab"
c.Spawner.environment = {{
    # an editable install does not place our server extension's config file
    "JUPYTER_CONFIG_PATH": {jupyter_config!r},
    # what the single-user image does with OPENBIS_CA_CERT, done here directly
    "REQUESTS_CA_BUNDLE": {ca_file!r},
}}
c.Spawner.environment.update({spawner_env!r})
"""


class JupyterHubProcess:
    """``url`` is the public URL; ``api(path)`` calls the REST API as an admin service.
    ``spawner_env`` goes into the user servers' environment, ``env`` into the hub's.
    ``local_spawner=False`` keeps the configured spawner (JUPYTERHUB_SPAWNER); ``user`` runs
    the hub as that user (``workdir`` must be theirs), from ``venv_bin`` (where
    ``jupyterhub`` is installed; default: this Python's)."""

    def __init__(
        self,
        workdir: Path,
        openbis_url: str,
        ca_file: str,
        spawner_env=None,
        local_spawner=True,
        user=None,
        venv_bin=VENV_BIN,
        **env,
    ):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_token = secrets.token_hex(16)
        self.homes = workdir / "homes"
        self.homes.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "hub.log"
        config = workdir / "test_config.py"
        config.write_text(
            TEST_CONFIG.format(
                config=str(REPO_ROOT / "hub" / "jupyterhub_config.py"),
                hub_port=free_port(),
                proxy_api_port=free_port(),
                api_token=self.api_token,
            )
            + (
                LOCAL_SPAWNER_CONFIG.format(
                    homes=str(self.homes),
                    singleuser=str(VENV_BIN / "jupyterhub-singleuser"),
                    jupyter_config=str(REPO_ROOT / "hub" / "jupyter-config"),
                    ca_file=ca_file,
                    spawner_env=spawner_env or {},
                )
                if local_spawner
                else ""
            )
        )
        self.user = user
        self.venv_bin = venv_bin
        self.env = {
            **os.environ,
            "OPENBIS_URL": openbis_url,
            "OPENBIS_CA_FILE": ca_file,
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
            "JUPYTERHUB_STATE_DIR": str(workdir),
            "JUPYTERHUB_BIND_URL": self.url,
            "JUPYTERHUB_HUB_IP": "127.0.0.1",
            # internal_ssl is the compose stack's, with DockerSpawner (tests/test_attacks.py);
            # local processes on 127.0.0.1 need no isolation from each other here
            "JUPYTERHUB_INTERNAL_SSL": "false",
            **env,
        }
        self.config = config
        self.proc = None

    def start(self, timeout: float = 30):
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the process)
        self.proc = subprocess.Popen(
            [str(self.venv_bin / "jupyterhub"), "-f", str(self.config)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.user,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited:\n{self.log_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/hub/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"JupyterHub did not come up:\n{self.log_text()[-3000:]}")

    def stop(self):
        """Stop the hub (and its proxy); user servers keep running (cleanup_servers=False)."""
        if self.proc:
            stop_process(self.proc)

    def restart(self):
        self.stop()
        return self.start()

    def stop_all_servers(self):
        for user in self.api("/users").json():
            if user.get("server"):
                self.api(f"/users/{user['name']}/server", method="DELETE")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, path: str, method: str = "GET", **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.api_token}"},
            timeout=30,
            **kwargs,
        )

    def wait_for_server(self, user: str, timeout: float = 30) -> dict:
        """The user's model once their default server is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api(f"/users/{user}").json()
            if model.get("servers", {}).get("", {}).get("ready"):
                return model
            time.sleep(0.2)
        raise TimeoutError(f"{user}'s server did not become ready")


@contextmanager
def hub_with_openbis_double(**env):
    """(hub, double) running in a temporary folder, for benchmarks outside pytest."""
    from tests.support.double import start_openbis_double

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "double").mkdir()
        (Path(tmp) / "hub").mkdir()
        double = start_openbis_double(Path(tmp) / "double")
        try:
            hub = JupyterHubProcess(Path(tmp) / "hub", double.url, double.ca_file, **env).start()
            try:
                yield hub, double
            finally:
                hub.stop_all_servers()
                hub.stop()
        finally:
            double.stop()
