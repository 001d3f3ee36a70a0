"""User servers as Docker containers (DockerSpawner): ``JUPYTERHUB_SPAWNER=docker``.

One container per user from the single-user image, on a fixed-name Docker network the hub
shares with them: the hub reaches each server directly (proxy routes, token hand-over).
Containers are removed when they stop; the user's files live on a named volume.

Every user runs arbitrary code, so the container grants it nothing it does not need (README,
Security): the image runs as jovyan and needs no capability at all, so all are dropped
(``JUPYTERHUB_CAP_ADD`` gives some back); no-new-privileges makes setuid files and file
capabilities inert (the image has none left either); a process limit stops fork bombs; the root
filesystem is read-only, with the home volume and a size-limited ``/tmp`` (tmpfs, counted
against the memory limit) the only writable places; no swap beyond the memory limit.
"""

import asyncio
import time
from collections.abc import Mapping

from dockerspawner import DockerSpawner
from traitlets import Float

HOME = "/home/jovyan"


class OpenBISDockerSpawner(DockerSpawner):
    """DockerSpawner that reports a started server as soon as it listens.

    After ``start()``, JupyterHub waits for the server with an exponential, randomised backoff
    (0.2 s doubling to 5 s): a server ready after 4 s is noticed ~1 s later on average. Here
    ``start()`` itself tries to connect every ``ready_poll_interval`` (a refused connection
    costs next to nothing) and returns once the server's port accepts one; JupyterHub's first
    HTTP request then waits for the server's answer."""

    ready_poll_interval = Float(
        0.05, config=True, help="Seconds between looks at a starting server."
    )
    ready_poll_limit = Float(
        60,
        config=True,
        help="""Seconds start() looks for the server before leaving the rest of the wait to
        JupyterHub (Spawner.http_timeout).""",
    )

    async def start(self):
        ip, port = await super().start()
        await self._wait_until_listening(ip, port)
        return ip, port

    async def _wait_until_listening(self, ip, port):
        deadline = time.monotonic() + self.ready_poll_limit
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 1)
            except (TimeoutError, OSError):
                await asyncio.sleep(self.ready_poll_interval)
                continue
            writer.close()
            return


def configure(c, settings: Mapping[str, object]) -> None:
    c.JupyterHub.spawner_class = "openbis_jupyterhub.hub.docker.OpenBISDockerSpawner"
    c.DockerSpawner.image = settings["JUPYTERHUB_SINGLEUSER_IMAGE"]
    c.DockerSpawner.network_name = settings["JUPYTERHUB_NETWORK"]
    c.DockerSpawner.use_internal_ip = True
    # {username} is DockerSpawner's escaped user id (lower case, `-xx` escapes), valid for
    # Docker names and distinct for ids differing only in case: "JDoe" -> "-4a-44oe". The
    # prefixes change only to run two stacks on one Docker engine (the tests do).
    c.DockerSpawner.prefix = settings["JUPYTERHUB_CONTAINER_PREFIX"]
    c.DockerSpawner.volumes = {settings["JUPYTERHUB_VOLUME_PREFIX"] + "{username}": HOME}
    c.DockerSpawner.notebook_dir = HOME
    c.DockerSpawner.remove = True
    c.DockerSpawner.extra_host_config = host_config(settings)


def host_config(settings: Mapping[str, object]) -> dict:
    """Docker's HostConfig additions (docker-py's names) for every user's container."""
    config = {
        "cap_drop": ["ALL"],
        "cap_add": list(settings["JUPYTERHUB_CAP_ADD"]),
        "pids_limit": settings["JUPYTERHUB_PIDS_LIMIT"],
        "read_only": settings["JUPYTERHUB_READ_ONLY_ROOT"],
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={settings['JUPYTERHUB_TMP_SIZE']},mode=1777"},  # noqa: S108
    }
    if settings["JUPYTERHUB_NO_NEW_PRIVILEGES"]:
        config["security_opt"] = ["no-new-privileges:true"]
    if settings["JUPYTERHUB_MEM_LIMIT"]:
        # memory + swap = memory: a memory bomb meets the limit instead of swapping the host
        config["memswap_limit"] = settings["JUPYTERHUB_MEM_LIMIT"]
    return config
