"""The admin's Swarm stack (deploy/swarm/stack.yaml + stack.double.yaml) as tests and
benchmarks run it: deployed with `scripts/swarm-up` (make swarm-up) from an env file, removed
with `scripts/swarm-down` plus what stays on purpose (volumes on every node, secrets).

Names are unique per run (stack, overlay network, service and volume prefixes, port); the hub
gets a certificate from a throw-away CA the clients trust, as in
tests/support/compose_stack.py, whose client helpers (sign-in, API tokens, sessions) this reuses.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from openbis_jupyterhub.hub.swarm import NETWORK_LABEL

from openbis_double import DoubleControl
from tests.support.compose_stack import ComposeStack, escape_user
from tests.support.hubprocess import REPO_ROOT
from tests.support.swarm_cluster import run


class SwarmStack(ComposeStack):
    """``url``, ``ca_file``, ``control`` as in ComposeStack; ``cluster``: the SwarmCluster."""

    def __init__(self, workdir: Path, cluster, hub_image, singleuser_image, double_image, **env):
        self.cluster = cluster
        self.settings = {
            **self.common_settings("obswarm", workdir, hub_image, singleuser_image, double_image),
            "STACK_NAME": self.project,
            "STACK_FILE": "deploy/swarm/stack.yaml:deploy/swarm/stack.double.yaml",
            "JUPYTERHUB_PORT": str(self.port),
            "JUPYTERHUB_SWARM_CONSTRAINTS": "node.role == worker",
            **env,
        }
        self.env_file = workdir / "swarm.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))
        self.process_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "OPENBIS_", "COMPOSE_", "STACK_"))
        }
        self.process_env["ENV_FILE"] = str(self.env_file)
        self.control = None
        self.double_ca_file = workdir / "double-ca.pem"

    def make(self, target, timeout=300) -> str:
        result = subprocess.run(
            ["make", "--no-print-directory", "-C", str(REPO_ROOT), target],
            env=self.process_env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"make {target} failed:\n{result.stdout}{result.stderr[-3000:]}")
        return result.stdout

    def up(self, timeout=300):
        """`make swarm-up`; the double's control API through its port on the manager."""
        self.make("swarm-up", timeout=timeout)
        self._connect_double()
        self.wait_for_hub(60)
        return self

    def down(self):
        self.make("swarm-down")

    def _container(self, service) -> str:
        """The running container of a stack service pinned to the manager (hub, openbis)."""
        name = f"{self.project}_{service}"
        return run(
            "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}"
        ).split()[0]

    def _connect_double(self):
        container = self._container("openbis")
        port = run("docker", "port", container, "8443/tcp").split()[0].rsplit(":", 1)[1]
        self.double_ca_file.write_text(run("docker", "exec", container, "cat", "/certs/ca.pem"))
        self.control = DoubleControl(f"https://127.0.0.1:{port}", str(self.double_ca_file))

    def logs(self, service="hub") -> str:
        """The service's log (JupyterHub logs to stderr, the proxy to stdout)."""
        return subprocess.run(
            ["docker", "service", "logs", "--raw", "--tail", "200", f"{self.project}_{service}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, check=False,
        ).stdout  # fmt: skip

    def hub_container_id(self) -> str:
        return self._container("hub")

    def service_name(self, user) -> str:
        """The user's server's service name, as the hub created it (None: not running)."""
        for line in run(
            "docker", "service", "ls", "--format", "{{json .}}",
            "--filter", f"label={NETWORK_LABEL}={self.project}",
        ).splitlines():  # fmt: skip
            name = json.loads(line)["Name"]
            inspect = json.loads(run("docker", "service", "inspect", name))[0]
            env = inspect["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env", [])
            if f"JUPYTERHUB_USER={user}" in env:
                return name
        return None

    def user_node(self, user) -> str:
        """The node id the user's server runs on."""
        return self.cluster.node_of_task(self.service_name(user))

    def user_volume(self, user) -> str:
        return f"{self.settings['JUPYTERHUB_VOLUME_PREFIX']}{escape_user(user)}"

    def remove(self):
        """Everything this stack made: stack, user services, volumes on every node, secrets."""
        try:
            self.down()
        except (RuntimeError, subprocess.TimeoutExpired):
            for name in run(
                "docker", "service", "ls", "-q", "--filter", f"name={self.project}"
            ).split():
                run("docker", "service", "rm", name, check=False)
            run("docker", "stack", "rm", self.project, check=False)
        engines = [["docker"]] + [["docker", "-H", w.host] for w in self.cluster.workers if w.pid]
        deadline = time.monotonic() + 60
        for engine in engines:
            names = run(*engine, "volume", "ls", "-q", "--filter", f"name={self.project}").split()
            names = [n for n in names if n.startswith(self.project)]
            # a volume stays in use until its task's container is gone: bounded retries
            while names and time.monotonic() < deadline:
                rm = subprocess.run(
                    [*engine, "volume", "rm", "-f", *names], capture_output=True, timeout=60
                )
                if rm.returncode == 0:
                    break
                time.sleep(1)
        for secret in ("cookie_secret", "crypt_key"):
            run("docker", "secret", "rm", f"{self.project}_{secret}", check=False)
        shutil.rmtree(self.cert_dir, ignore_errors=True)
