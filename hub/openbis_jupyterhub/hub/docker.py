"""User servers as Docker containers (DockerSpawner): ``JUPYTERHUB_SPAWNER=docker``.

One container per user from the single-user image, on a fixed-name Docker network the hub
shares with them: the hub reaches each server directly (proxy routes, token hand-over).
Containers are removed when they stop; the user's files live on a named volume.
"""

from collections.abc import Mapping

HOME = "/home/jovyan"


def configure(c, settings: Mapping[str, object]) -> None:
    c.JupyterHub.spawner_class = "docker"
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
