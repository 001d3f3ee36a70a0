"""The admin's compose stack (compose.yaml + compose.double.yaml) as tests and benchmarks run it.

Everything an admin sets in .env is passed explicitly (an env file plus a clean process
environment, so a developer's .env or shell cannot leak in). Names are unique per run: the
compose project, the network, the user containers' and volumes' prefixes and the port on
127.0.0.1, so several stacks share one Docker engine. The hub gets a certificate from a
throw-away CA that the test trusts: clients verify TLS, nothing turns verification off.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from escapism import escape

from openbis_double import DoubleControl, seed
from openbis_double.certs import create_certificates
from tests.support.hubprocess import REPO_ROOT
from tests.support.processes import free_port

# what the hub container sees of ./certs (compose.yaml mounts it read-only)
CERTS_IN_HUB = "/etc/jupyterhub/certs"
# the ELN pages are served by openBIS: their origin is the double's URL in the network
ELN_ORIGIN = "https://openbis:8443"


class ComposeStack:
    """``url``: the hub (https://127.0.0.1:PORT); ``ca_file``: the CA its certificate is from;
    ``control``: the double's control API (through its port published on 127.0.0.1)."""

    def __init__(self, workdir: Path, hub_image, singleuser_image, double_image, **settings):
        self.settings = {
            **self.common_settings("obcompose", workdir, hub_image, singleuser_image, double_image),
            "JUPYTERHUB_PORT": f"127.0.0.1:{self.port}",
            "JUPYTERHUB_DOCKER_PROXY_IMAGE": hub_image.replace("/hub:", "/docker-proxy:"),
            **settings,
        }
        self.env_file = workdir / "stack.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))
        # the process environment minus anything the stack reads (compose lets it win)
        self.process_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "OPENBIS_", "COMPOSE_"))
        }
        self.process_env.update(DOCKER_BUILDKIT="0", COMPOSE_DOCKER_CLI_BUILD="0")
        self.compose_command = [
            "docker", "compose", "-p", self.project, "--project-directory", str(REPO_ROOT),
            "-f", str(REPO_ROOT / "compose.yaml"), "-f", str(REPO_ROOT / "compose.double.yaml"),
            "--env-file", str(self.env_file),
        ]  # fmt: skip
        self.control = None
        self.double_ca_file = workdir / "double-ca.pem"

    # --- compose ---------------------------------------------------------------------------
    def compose(self, *args, timeout=180) -> str:
        result = subprocess.run(
            [*self.compose_command, *args],
            env=self.process_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def common_settings(self, kind, workdir, hub_image, singleuser_image, double_image) -> dict:
        """Sets the run's unique ``project`` name, ``workdir``, ``port``, ``url`` and a
        certificate from a throw-away CA (``ca_file``); returns the settings every stack of
        ours takes (SwarmStack too)."""
        self.project = f"{kind}-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        # ./certs is the one folder compose.yaml mounts for certificates; a subfolder per run
        self.cert_dir = REPO_ROOT / "certs" / self.project
        cert, key, self.ca_file = create_certificates(self.cert_dir, [])
        return {
            # the double's compose/stack file overrides it; ours insist on a value
            "OPENBIS_URL": "https://openbis.invalid",
            "JUPYTERHUB_PUBLIC_URL": self.url,
            "JUPYTERHUB_SSL_CERT": f"{CERTS_IN_HUB}/{self.project}/{cert.name}",
            "JUPYTERHUB_SSL_KEY": f"{CERTS_IN_HUB}/{self.project}/{key.name}",
            "JUPYTERHUB_ADMIN_USERS": "admin",
            "JUPYTERHUB_MEM_LIMIT": "2G",
            "JUPYTERHUB_HUB_IMAGE": hub_image,
            "JUPYTERHUB_SINGLEUSER_IMAGE": singleuser_image,
            "OPENBIS_DOUBLE_IMAGE": double_image,
            "JUPYTERHUB_NETWORK": self.project,
            "JUPYTERHUB_CONTAINER_PREFIX": self.project,
            "JUPYTERHUB_VOLUME_PREFIX": f"{self.project}-user-",
        }

    def up(self, timeout=180):
        """Start (or re-create) the stack, wait until the hub answers through its proxy."""
        self.compose("up", "-d", "--no-build", timeout=timeout)
        self._connect_double()
        self.wait_for_hub(timeout)
        return self

    def restart_hub(self, timeout=120):
        self.compose("restart", "hub", timeout=timeout)
        self.wait_for_hub(timeout)

    def make(self, target, *variables, timeout=180) -> str:
        """``make TARGET`` as an admin runs it, for this stack (the scripts read COMPOSE)."""
        result = subprocess.run(
            ["make", "--no-print-directory", "-C", str(REPO_ROOT), target, *variables,
             "COMPOSE=" + " ".join(self.compose_command)],
            env=self.process_env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"make {target} failed:\n{result.stdout}{result.stderr[-3000:]}")
        return result.stdout

    def down(self):
        """What `make down` does: stop the user servers, then `docker compose down`; every
        volume (hub state, user homes) stays."""
        self.make("down")

    def user_volume(self, user) -> str:
        return f"{self.settings['JUPYTERHUB_VOLUME_PREFIX']}{escape_user(user)}"

    def wait_for_hub(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/hub/health", verify=self.ca_file, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the hub did not answer within {timeout} s:\n{self.logs()}")

    def _connect_double(self):
        """The double's control API through its published port, trusting its current CA
        (a new CA on every start of the double)."""
        port = self.compose("port", "openbis-double", "8443").strip().rsplit(":", 1)[1]
        self.double_ca_file.write_text(
            self.compose("exec", "-T", "openbis-double", "cat", "/certs/ca.pem")
        )
        self.control = DoubleControl(f"https://127.0.0.1:{port}", str(self.double_ca_file))

    def logs(self, service="hub") -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", "200", service, timeout=30)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            return str(e)

    def hub_container_id(self) -> str:
        return self.compose("ps", "-q", "hub").strip()

    # --- users -------------------------------------------------------------------------------
    def login(self, user) -> str:
        """A new openBIS session token for a seeded user (or one added with add_user)."""
        password = seed.USERS.get(user) or f"{user}-password"
        token = self.control.login(user, password)
        assert token, f"the double refused {user}"
        return token

    def user_container(self, user) -> dict | None:
        """`docker inspect` of the user's running server container, or None."""
        name = f"{self.project}-{escape_user(user)}"
        result = subprocess.run(
            ["docker", "inspect", name], capture_output=True, text=True, timeout=30, check=False
        )
        return json.loads(result.stdout)[0] if result.returncode == 0 else None

    def api(self, path, token, method="GET", **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {token}"},
            verify=self.ca_file,
            timeout=60,
            **kwargs,
        )

    def api_token(self, user) -> str:
        """A JupyterHub API token of ``user``, made as the user does on /hub/token: signed in
        with an openBIS session (ELN link), then the REST API with the page's XSRF token."""
        session = self.session()
        signed_in = session.get(
            f"{self.url}/hub/login",
            params={"token": self.login(user), "next": "/hub/token"},
            timeout=60,
        )
        signed_in.raise_for_status()
        answer = session.post(
            f"{self.url}/hub/api/users/{user}/tokens",
            json={"note": "tests", "expires_in": 3600},
            headers={"X-XSRFToken": session.cookies["_xsrf"], "Referer": signed_in.url},
            timeout=60,
        )
        answer.raise_for_status()
        return answer.json()["token"]

    def session(self) -> requests.Session:
        session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would win over session.verify
        session.trust_env = False
        session.verify = str(self.ca_file)
        return session

    def spki_hash(self) -> str:
        """base64 SHA-256 of the CA's public key, for Chromium's
        --ignore-certificate-errors-spki-list: it trusts that one CA and nothing else."""
        ca = x509.load_pem_x509_certificate(Path(self.ca_file).read_bytes())
        spki = ca.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    # --- tear-down -------------------------------------------------------------------------
    def remove(self):
        """Remove everything this stack made: user containers and volumes, the compose
        containers, volumes and network, the certificate folder."""
        # user servers first: they are attached to the network and hold their volumes
        containers = _docker("ps", "-aq", "--filter", f"name=^{self.project}-").split()
        if containers:
            _docker("rm", "-f", *containers)
        try:
            self.compose("down", "-v", "--remove-orphans", "-t", "5")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # a stack that never came up has less to remove; the rest still goes
        volumes = _docker("volume", "ls", "-q", "--filter", f"name={self.project}").split()
        volumes = [v for v in volumes if v.startswith(self.project)]
        if volumes:
            _docker("volume", "rm", "-f", *volumes)
        _docker("network", "rm", self.project)
        shutil.rmtree(self.cert_dir, ignore_errors=True)


def _docker(*args) -> str:
    """The docker CLI's output; failures are left to the caller's checks (tear-down)."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=180, check=False
    )
    return result.stdout


def escape_user(user: str) -> str:
    """DockerSpawner's escaped user id (container and volume names): lower case and digits
    stay, everything else becomes ``-xx`` (hex)."""
    return escape(user, safe="abcdefghijklmnopqrstuvwxyz0123456789", escape_char="-").lower()
