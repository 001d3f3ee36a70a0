"""The spawners this hub can run user servers with: one table, ``SPAWNERS``.

``JUPYTERHUB_SPAWNER`` (``settings.py``) takes one of its names, ``hub/jupyterhub_config.py``
calls ``configure(c, values)``, Zero to JupyterHub's ``hub.extraConfig``
(``deploy/kubernetes/values.yaml``) calls ``configure(c, values, "kubernetes")``.

**A spawner module** (``openbis_jupyterhub.hub.<name>``) provides
``configure(c, settings) -> None``: it sets its spawner's traitlets on the config ``c`` from
``settings`` (``settings.read()``: every setting by its environment variable's name, parsed,
defaults filled in). It may define its own Spawner subclass. It does not set
``c.JupyterHub.spawner_class`` and does not repeat the refusals below: ``configure`` here does
both, from the module's entry in the table.

**Adding a spawner**: write that module, add its line to ``SPAWNERS``; when the module defines
its own Spawner class, name it in ``pyproject.toml`` under
``[project.entry-points."jupyterhub.spawners"]`` as ``openbis-<name>`` (JupyterHub resolves
``c.JupyterHub.spawner_class = "openbis-<name>"`` through that entry point, as it does
DockerSpawner's ``"docker"``); a unit test keeps the two in step. Settings of its own go into
``settings.SETTINGS`` and ``.env.example``.
"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Spawner:
    module: str  # provides configure(c, settings)
    # c.JupyterHub.spawner_class: an entry point name (pyproject.toml) or "package.Class"
    spawner_class: str
    # why JupyterHub's internal_ssl cannot work with it (JUPYTERHUB_INTERNAL_SSL=true is then
    # refused); "" when the module turns it on itself
    no_internal_ssl: str
    # why earlier single-user images cannot be kept beside the current one with it
    # (JUPYTERHUB_SINGLEUSER_IMAGES is then refused); "" when the module runs them
    no_environment_versions: str


SPAWNERS = {
    "docker": Spawner("openbis_jupyterhub.hub.docker", "openbis-docker", "", ""),
    "swarm": Spawner(
        "openbis_jupyterhub.hub.swarm",
        "openbis-swarm",
        "on Swarm the hub cannot copy certificates into a volume on another node "
        "(docs/security.md)",
        "environment versions run as named servers of DockerSpawner only",
    ),
    "kubernetes": Spawner(
        "openbis_jupyterhub.hub.kubernetes",
        "kubespawner.KubeSpawner",
        "on Kubernetes Zero to JupyterHub's network policies keep users apart "
        "(deploy/kubernetes/README.md)",
        "environment versions run as named servers of DockerSpawner only",
    ),
    "slurm": Spawner(
        "openbis_jupyterhub.hub.slurm",
        "openbis-slurm",
        "on Slurm user servers are kept apart by JupyterHub's tokens; the server's key would "
        "have to reach the job through the user's home (deploy/slurm/README.md)",
        "environment versions run as named servers of DockerSpawner only",
    ),
}


def configure(c, values: Mapping[str, object], name: str | None = None) -> None:
    """Select the spawner ``name`` (default: ``JUPYTERHUB_SPAWNER``) and have its module set
    its traitlets; refuse settings it cannot honour."""
    from .settings import SettingError  # settings imports this table

    name = name or values["JUPYTERHUB_SPAWNER"]
    spawner = SPAWNERS[name]
    if spawner.no_internal_ssl and values["JUPYTERHUB_INTERNAL_SSL"]:
        raise SettingError(
            "JUPYTERHUB_INTERNAL_SSL=true needs DockerSpawner (the compose stack): "
            + spawner.no_internal_ssl
            + "."
        )
    if spawner.no_environment_versions and values.get("JUPYTERHUB_SINGLEUSER_IMAGES"):
        raise SettingError(
            "JUPYTERHUB_SINGLEUSER_IMAGES needs JUPYTERHUB_SPAWNER=docker: "
            + spawner.no_environment_versions
            + "."
        )
    c.JupyterHub.spawner_class = spawner.spawner_class
    importlib.import_module(spawner.module).configure(c, values)
