"""A stock JupyterHub + DockerSpawner beside our stack, as the outside anchor of the journey
benchmark (compose_journey.py).

The official pattern (jupyterhub-deploy-docker): one hub container with the Docker socket,
JupyterHub's own configurable-http-proxy inside it, DockerSpawner putting each user's server
on a Docker network the hub shares, a named volume per user's home, DummyAuthenticator (any
user name and password sign in). Same versions as ours: it runs our hub image (JupyterHub,
DockerSpawner and configurable-http-proxy at our pins) with none of our code in its
configuration, and spawns our single-user image with DockerSpawner's defaults (so without our
hardening, internal TLS or token hand-over). Like ours, it serves HTTPS on 127.0.0.1 with a
certificate of a throw-away CA and gives each server the same memory limit.
"""

import subprocess
import time
import uuid
from pathlib import Path

import requests

from openbis_double.certs import create_certificates
from tests.support.images import docker
from tests.support.processes import free_port

CONFIG = """\
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "docker"
c.JupyterHub.ssl_cert = "/srv/stock/server.pem"
c.JupyterHub.ssl_key = "/srv/stock/server-key.pem"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "{hub}"
c.JupyterHub.db_url = "sqlite:////srv/stock/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/srv/stock/jupyterhub_cookie_secret"
c.DockerSpawner.image = "{image}"
c.DockerSpawner.network_name = "{network}"
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.prefix = "{project}"
c.DockerSpawner.volumes = {{"{project}-user-{{username}}": "/home/jovyan"}}
c.DockerSpawner.notebook_dir = "/home/jovyan"
c.DockerSpawner.remove = True
c.DockerSpawner.mem_limit = "2G"
c.Spawner.default_url = "/lab"
"""


class StockHub:
    """``url``: the stock hub (https://127.0.0.1:PORT); ``ca_file``: its certificate's CA."""

    def __init__(self, workdir: Path, hub_image: str, singleuser_image: str):
        self.project = f"stock-{uuid.uuid4().hex[:8]}"
        self.folder = Path(workdir) / self.project
        _, _, self.ca_file = create_certificates(self.folder, [])
        self.hub = f"{self.project}-hub"
        (self.folder / "jupyterhub_config.py").write_text(
            CONFIG.format(
                hub=self.hub, image=singleuser_image, network=self.project, project=self.project
            )
        )
        self.hub_image = hub_image
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"

    def up(self, timeout=180):
        docker("network", "create", self.project)
        docker(
            "run", "-d", "--name", self.hub, "--network", self.project,
            "--user", "root", "--workdir", "/srv/stock",
            "-p", f"127.0.0.1:{self.port}:8000",
            "-v", "/var/run/docker.sock:/var/run/docker.sock",
            "-v", f"{self.folder}:/srv/stock",
            self.hub_image, "jupyterhub", "-f", "/srv/stock/jupyterhub_config.py",
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/hub/health", verify=self.ca_file, timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the stock hub did not answer within {timeout} s:\n{self.logs()}")

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_file)
        return session

    def logs(self) -> str:
        # JupyterHub logs to stderr
        return subprocess.run(
            ["docker", "logs", "--tail", "200", self.hub],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, check=False,
        ).stdout  # fmt: skip

    def remove(self):
        """The hub, the users' servers and volumes, the network: all named after the project."""
        containers = docker("ps", "-aq", "--filter", f"name=^{self.project}-", check=False)
        if containers.split():
            docker("rm", "-f", *containers.split(), check=False)
        volumes = docker("volume", "ls", "-q", "--filter", f"name={self.project}", check=False)
        volumes = [v for v in volumes.split() if v.startswith(self.project)]
        if volumes:
            docker("volume", "rm", "-f", *volumes, check=False)
        docker("network", "rm", self.project, check=False)
