"""The stack's settings: environment variables -> traitlets, each default stated once, here.

``jupyterhub_config.py`` reads them with ``read()`` and hands them to ``apply()`` and the
spawner's module; nothing else reads the environment. An empty variable means its default
(compose passes unset ``.env`` entries as empty strings). ``.env.example`` documents each one
for admins; a unit test keeps that file and this table in step.
"""

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..contract import size_bytes
from .spawners import SPAWNERS


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (order kept, duplicates dropped)."""
    return list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))


def boolean(text: str) -> bool:
    """``true``/``yes``/``1`` or ``false``/``no``/``0`` (any case)."""
    value = text.lower()
    if value not in ("true", "yes", "1", "false", "no", "0"):
        raise ValueError("must be true or false")
    return value in ("true", "yes", "1")


def byte_size(text: str) -> int:
    """``4G`` -> bytes, as JupyterHub's ByteSpecification reads it (K, M, G, T: powers of 1024;
    a plain number: bytes). Parsed here once: the hub's spawner and the Docker API filter,
    which requires the same limit, both read this value."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    if text.isdecimal():
        size = int(text)
    elif text[-1:] in units:
        size = int(float(text[:-1]) * units[text[-1]])
    else:
        raise ValueError("must be a number of bytes or end in K, M, G or T")
    if size <= 0:
        raise ValueError("must be more than 0")
    return size


def size(text: str) -> str:
    """A size in Docker's syntax, whole binary units: ``10G`` (``10g`` -> ``10G``)."""
    size_bytes(text)
    return text.upper()


LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # an environment: a named server's name


def environments(text: str) -> dict[str, str]:
    """``"2026.06=site/singleuser:2026.06, 2025.12=site/singleuser:2025.12"`` -> {label: image}:
    labels of letters, digits, ``.``, ``_``, ``-`` (named servers are called so), each once,
    each image once."""
    kept: dict[str, str] = {}
    for item in comma_list(text):
        label, eq, image = (part.strip() for part in item.partition("="))
        if not eq or not image or not LABEL.fullmatch(label):
            raise ValueError(f"{item!r} is not label=image (label: letters, digits, . _ -)")
        if label in kept or image in kept.values():
            raise ValueError(f"{item!r}: each label and each image only once")
        kept[label] = image
    return kept


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    default: object = None  # None: the traitlet keeps its own default (or nothing is set)
    traitlet: str = ""  # "Class.trait" the value goes to, where it maps to one directly
    parse: Callable[[str], object] = str
    required: bool = False


SETTINGS = [
    # --- openBIS
    Setting("OPENBIS_URL", traitlet="OpenBISAuthenticator.openbis_url", required=True),
    Setting("OPENBIS_CA_FILE", traitlet="OpenBISAuthenticator.openbis_ca_file"),
    Setting("OPENBIS_ELN_URL", traitlet="OpenBISAuthenticator.eln_url"),
    Setting("OPENBIS_ELN_ORIGINS", traitlet="NotebookEndpoint.eln_origins", parse=comma_list),
    Setting(
        "OPENBIS_NOTEBOOK_MAX_BYTES", traitlet="NotebookEndpoint.max_notebook_bytes", parse=int
    ),
    Setting("OPENBIS_NOTEBOOK_TEMPLATES", traitlet="NotebookEndpoint.templates_dir"),
    # --- the hub
    Setting("JUPYTERHUB_STATE_DIR", "/srv/jupyterhub"),  # database, cookie secret
    # Docker Swarm: the stack mounts these as Docker secrets (deploy/swarm/stack.yaml); empty:
    # the cookie secret in the state directory, the crypt key from JUPYTERHUB_CRYPT_KEY
    Setting("JUPYTERHUB_COOKIE_SECRET_FILE"),
    Setting("JUPYTERHUB_CRYPT_KEY_FILE"),
    Setting("JUPYTERHUB_CONFIG_D", "/etc/jupyterhub/jupyterhub_config.d"),  # site overrides
    Setting("JUPYTERHUB_BIND_URL", "http://:8000", "JupyterHub.bind_url"),
    # user servers reach the hub API over the Docker network
    Setting("JUPYTERHUB_HUB_IP", "0.0.0.0", "JupyterHub.hub_ip"),  # noqa: S104
    Setting("JUPYTERHUB_HUB_CONNECT_IP", traitlet="JupyterHub.hub_connect_ip"),
    # the hub's address as users reach it (its host name goes into internal certificates)
    Setting("JUPYTERHUB_PUBLIC_URL", "https://localhost"),
    Setting("JUPYTERHUB_SSL_CERT", traitlet="JupyterHub.ssl_cert"),
    Setting("JUPYTERHUB_SSL_KEY", traitlet="JupyterHub.ssl_key"),
    Setting("JUPYTERHUB_ADMIN_USERS", traitlet="Authenticator.admin_users", parse=comma_list),
    Setting("JUPYTERHUB_ALLOWED_USERS", traitlet="Authenticator.allowed_users", parse=comma_list),
    Setting("JUPYTERHUB_CULL_TIMEOUT", 3600, parse=int),
    # --- user servers
    Setting("JUPYTERHUB_SPAWNER", "docker", parse=one_of(*SPAWNERS)),  # spawners.py
    Setting("JUPYTERHUB_SINGLEUSER_IMAGE", "openbis-jupyterhub/singleuser:latest"),
    # environment versions (DockerSpawner): the label saved analyses record for the image
    # above (empty: its tag), and earlier images kept beside it, "label=image,..."
    Setting("JUPYTERHUB_SINGLEUSER_LABEL"),
    Setting("JUPYTERHUB_SINGLEUSER_IMAGES", {}, parse=environments),
    # Docker and Swarm require a memory limit (the Docker API filter refuses a container without)
    Setting("JUPYTERHUB_MEM_LIMIT", 4 * 1024**3, "Spawner.mem_limit", parse=byte_size),
    Setting("JUPYTERHUB_CPU_LIMIT", traitlet="Spawner.cpu_limit", parse=float),
    Setting("JUPYTERHUB_MEM_GUARANTEE", traitlet="Spawner.mem_guarantee"),
    Setting("JUPYTERHUB_CPU_GUARANTEE", traitlet="Spawner.cpu_guarantee", parse=float),
    # --- user servers with DockerSpawner and SwarmSpawner
    Setting("JUPYTERHUB_NETWORK", "openbis-jupyterhub"),
    Setting("JUPYTERHUB_CONTAINER_PREFIX", "jupyter"),
    Setting("JUPYTERHUB_VOLUME_PREFIX", "jupyterhub-user-"),
    # hardening (hub/docker.py): what a user's code may do inside its container
    Setting("JUPYTERHUB_CAP_ADD", [], parse=comma_list),  # all capabilities dropped but these
    Setting("JUPYTERHUB_NO_NEW_PRIVILEGES", True, parse=boolean),
    Setting("JUPYTERHUB_PIDS_LIMIT", 512, parse=int),
    Setting("JUPYTERHUB_READ_ONLY_ROOT", True, parse=boolean),
    Setting("JUPYTERHUB_TMP_SIZE", "1G"),
    # the most each user's home may hold (10G); empty: unbounded. Docker and Swarm: the local
    # volume driver's size (XFS project quotas; the hub refuses to start where the engine
    # cannot enforce it); Kubernetes: each home PVC's capacity. docs/admin-guide.md, "Disk"
    Setting("JUPYTERHUB_HOME_SIZE", parse=size),
    # between users (hub/docker.py): JupyterHub's internal_ssl, mutual TLS between the hub, the
    # proxy and user servers. Empty: on with DockerSpawner; Swarm and Kubernetes refuse "true"
    Setting("JUPYTERHUB_INTERNAL_SSL", parse=boolean),
    # --- user servers on Docker Swarm (hub/swarm.py)
    # placement constraints for user servers, e.g. "node.role == worker"
    Setting("JUPYTERHUB_SWARM_CONSTRAINTS", parse=comma_list),
    # homes on NFS ("server:/export", a directory per user below it); empty: node-local
    # volumes, and each user's server stays on the node that holds their volume
    Setting("JUPYTERHUB_HOMES_NFS"),
    Setting("JUPYTERHUB_HOMES_NFS_OPTIONS", "rw,nfsvers=4.2,hard"),
    # --- user servers with KubeSpawner (hub/kubernetes.py)
    # a home PVC's capacity as a Kubernetes quantity, from before JUPYTERHUB_HOME_SIZE (which
    # replaces it; setting both is an error); neither: 10Gi (kubernetes.py)
    Setting("JUPYTERHUB_STORAGE_CAPACITY"),
    Setting("JUPYTERHUB_STORAGE_CLASS"),
    # --- user servers as Slurm jobs (hub/slurm.py, deploy/slurm/README.md)
    # the single-user image as a Charliecloud directory, the same path on every compute node
    Setting("JUPYTERHUB_SLURM_IMAGE"),
    # a file of "openbis_user_id cluster_account" lines; unlisted users: the same name
    Setting("JUPYTERHUB_SLURM_ACCOUNT_MAP"),
    # the spawn form's partitions (the first is the default; empty: the cluster's default)
    # and limits; JUPYTERHUB_MEM_LIMIT and JUPYTERHUB_CPU_LIMIT are the defaults
    Setting("JUPYTERHUB_SLURM_PARTITIONS", parse=comma_list),
    Setting("JUPYTERHUB_SLURM_MAX_CPUS", 4, parse=int),
    Setting("JUPYTERHUB_SLURM_MAX_MEMORY", 32 * 1024**3, parse=byte_size),
    Setting("JUPYTERHUB_SLURM_MAX_GPUS", 0, parse=int),
    Setting("JUPYTERHUB_SLURM_MAX_HOURS", 24.0, parse=float),
    Setting("JUPYTERHUB_SLURM_HOURS", 8.0, parse=float),  # the walltime of a one-click start
    # seconds between looks at each running job: how soon an ended job is noticed
    Setting("JUPYTERHUB_SLURM_POLL_INTERVAL", 10, parse=int),
    # host paths bound into the server's container (SRC or SRC:DST, comma-separated; "none":
    # nothing) so that sbatch, squeue and Dask's SLURMCluster work from the notebook: the
    # cluster's Slurm configuration and munge socket; unset: /etc/slurm,/run/munge (slurm.py)
    Setting("JUPYTERHUB_SLURM_BINDS", parse=comma_list),
]


class SettingError(ValueError):
    """A setting that is missing or malformed; the message names the variable."""


def read(env: Mapping[str, str] = os.environ, *, complete: bool = True) -> dict[str, object]:
    """Every setting's value: its environment variable, parsed, else its default.

    ``complete=False`` allows required settings to be missing, where they come from another
    part of the configuration (Zero to JupyterHub's ``hub.config``)."""
    values = {}
    for setting in SETTINGS:
        text = env.get(setting.name, "").strip()
        if not text:
            if setting.required and complete:
                raise SettingError(f"{setting.name} must be set (see .env.example).")
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = setting.parse(text)
        except ValueError as e:
            raise SettingError(f"{setting.name}={text!r}: {e}") from e
    return values


def apply(c, values: Mapping[str, object]) -> None:
    """Set the traitlets that settings map to directly (those with a value)."""
    for setting in SETTINGS:
        value = values[setting.name]
        if setting.traitlet and value is not None:
            section, trait = setting.traitlet.split(".")
            setattr(getattr(c, section), trait, value)
