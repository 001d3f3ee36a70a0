"""Environment -> traitlets: defaults, parsing, clear errors, and the admin's documentation."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from openbis_jupyterhub.hub import settings
from openbis_jupyterhub.hub.auth import OpenBISAuthenticator
from openbis_jupyterhub.hub.handlers import NotebookEndpoint
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[2]
# set by the images, compose.yaml or the deployment files themselves, not by admins in .env
SET_BY_THE_STACK = {
    "JUPYTERHUB_STATE_DIR",
    "JUPYTERHUB_CONFIG_D",
    "JUPYTERHUB_BIND_URL",
    "JUPYTERHUB_HUB_IP",
    "JUPYTERHUB_HUB_CONNECT_IP",
    "JUPYTERHUB_SPAWNER",
    "OPENBIS_NOTEBOOK_TEMPLATES",
    # Docker Swarm: secret files deploy/swarm/stack.yaml mounts
    "JUPYTERHUB_COOKIE_SECRET_FILE",
    "JUPYTERHUB_CRYPT_KEY_FILE",
    # Kubernetes only (deploy/kubernetes/README.md documents them)
    "JUPYTERHUB_STORAGE_CAPACITY",
    "JUPYTERHUB_STORAGE_CLASS",
}


def test_defaults_apply_when_variables_are_empty():
    values = settings.read({"OPENBIS_URL": "https://o.example.org", "JUPYTERHUB_NETWORK": " "})
    assert values["JUPYTERHUB_NETWORK"] == "openbis-jupyterhub"
    assert values["JUPYTERHUB_CULL_TIMEOUT"] == 3600
    assert values["OPENBIS_ELN_ORIGINS"] is None


def test_values_are_parsed_and_applied():
    env = {
        "OPENBIS_URL": "https://o.example.org",
        "OPENBIS_ELN_ORIGINS": "https://eln.example.org, https://b.example.org,",
        "OPENBIS_NOTEBOOK_MAX_BYTES": "1000",
        "JUPYTERHUB_ADMIN_USERS": "JDoe,admin",
        "JUPYTERHUB_CPU_LIMIT": "1.5",
    }
    c = Config()
    settings.apply(c, settings.read(env))
    assert c.OpenBISAuthenticator.openbis_url == "https://o.example.org"
    assert c.NotebookEndpoint.eln_origins == ["https://eln.example.org", "https://b.example.org"]
    assert c.NotebookEndpoint.max_notebook_bytes == 1000
    assert c.Authenticator.admin_users == ["JDoe", "admin"]
    assert c.Spawner.cpu_limit == 1.5
    # settings without a value leave the traitlet's own default alone
    assert "eln_url" not in c.OpenBISAuthenticator


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "OPENBIS_URL must be set"),
        ({"OPENBIS_NOTEBOOK_MAX_BYTES": "20MB"}, "OPENBIS_NOTEBOOK_MAX_BYTES='20MB'"),
        ({"JUPYTERHUB_SPAWNER": "podman"}, "JUPYTERHUB_SPAWNER='podman': must be one of"),
    ],
)
def test_errors_name_the_variable(env, words):
    with pytest.raises(settings.SettingError, match=re.escape(words)):
        settings.read({"OPENBIS_URL": "https://o.example.org", **env} if env else env)


def test_every_setting_is_documented_for_admins():
    documented = set()
    for example in (".env.example", "deploy/slurm/hub.env"):
        documented |= set(re.findall(r"^#?\s*(\w+)=", (REPO / example).read_text(), re.M))
    missing = {s.name for s in settings.SETTINGS} - SET_BY_THE_STACK - documented
    assert not missing, f".env.example does not document {sorted(missing)}"


# documented in .env.example, used on Docker Swarm only
SWARM_ONLY = {
    "JUPYTERHUB_SWARM_CONSTRAINTS",
    "JUPYTERHUB_HOMES_NFS",
    "JUPYTERHUB_HOMES_NFS_OPTIONS",
}


# the Slurm hub's (a plain install on a login node: deploy/slurm/hub.env), not the stacks'
SLURM_ONLY = {s.name for s in settings.SETTINGS if s.name.startswith("JUPYTERHUB_SLURM_")}


def passed_settings(stack_file: str) -> set[str]:
    return set(re.findall(r"^\s+(\w+): \$\{", (REPO / stack_file).read_text(), re.M))


def test_compose_passes_every_setting_the_admin_can_set():
    missing = {s.name for s in settings.SETTINGS} - SET_BY_THE_STACK - SWARM_ONLY - SLURM_ONLY
    missing -= passed_settings("compose.yaml")
    assert not missing, f"compose.yaml does not pass {sorted(missing)} to the hub"


# user-container hardening is DockerSpawner's (hub/docker.py); swarm services do not take it
# yet, so the stack file does not offer settings that would do nothing there
DOCKER_ONLY = {
    "JUPYTERHUB_CAP_ADD",
    "JUPYTERHUB_NO_NEW_PRIVILEGES",
    "JUPYTERHUB_PIDS_LIMIT",
    "JUPYTERHUB_READ_ONLY_ROOT",
    "JUPYTERHUB_TMP_SIZE",
    "JUPYTERHUB_INTERNAL_SSL",  # refused on Swarm (spawners.py): certificates stay on one node
    # environment versions: refused on Swarm (spawners.py): named servers of DockerSpawner
    "JUPYTERHUB_SINGLEUSER_LABEL",
    "JUPYTERHUB_SINGLEUSER_IMAGES",
}


def test_swarm_stack_passes_every_setting_the_admin_can_set():
    missing = {s.name for s in settings.SETTINGS} - SET_BY_THE_STACK - DOCKER_ONLY - SLURM_ONLY
    missing -= passed_settings("deploy/swarm/stack.yaml")
    assert not missing, f"deploy/swarm/stack.yaml does not pass {sorted(missing)} to the hub"


def test_help_all_documents_every_setting_of_ours():
    jupyterhub = Path(sys.executable).parent / "jupyterhub"
    text = subprocess.run(
        [str(jupyterhub), "--help-all"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    ours = {"openbis_url", "openbis_ca_file", "eln_url", "openbis_timeout"}
    ours |= {"eln_origins", "max_notebook_bytes", "templates_dir"}
    assert ours <= set(OpenBISAuthenticator.class_traits(config=True))
    for name in ours:
        assert f"--OpenBISAuthenticator.{name}=" in text, name


def test_templates_default_to_the_checkout():
    assert Path(NotebookEndpoint().templates_dir) == REPO / "notebook_templates"


def test_user_containers_are_hardened_by_default():
    from openbis_jupyterhub.hub import docker

    values = settings.read({"OPENBIS_URL": "https://o.example.org", "JUPYTERHUB_MEM_LIMIT": "2G"})
    assert docker.host_config(values) == {
        "cap_drop": ["ALL"],
        "cap_add": [],
        "pids_limit": 512,
        "read_only": True,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,size=1G,mode=1777"},
        "security_opt": ["no-new-privileges:true"],
        "memswap_limit": 2 * 1024**3,
    }
    with pytest.raises(settings.SettingError, match="JUPYTERHUB_READ_ONLY_ROOT='maybe'"):
        settings.read(
            {"OPENBIS_URL": "https://o.example.org", "JUPYTERHUB_READ_ONLY_ROOT": "maybe"}
        )


def test_server_certificates_reach_the_container_private_to_jovyan(tmp_path):
    """What move_certs puts into the certificates volume (hub/docker.py): the key for jovyan
    only, plain files, names as JupyterHub made them."""
    import io
    import tarfile

    from openbis_jupyterhub.hub import docker

    paths = {}
    for kind, name in (("keyfile", "user-JDoe.key"), ("certfile", "user-JDoe.crt"),
                       ("cafile", "notebooks-ca_trust.crt")):  # fmt: skip
        (tmp_path / name).write_text(f"PEM of {kind}")
        paths[kind] = str(tmp_path / name)
    with tarfile.open(fileobj=io.BytesIO(docker.certs_archive(paths))) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert archive.extractfile("user-JDoe.key").read() == b"PEM of keyfile"
    assert {name: (m.mode, m.uid, m.gid, m.isfile()) for name, m in members.items()} == {
        "user-JDoe.key": (0o400, 1000, 100, True),
        "user-JDoe.crt": (0o444, 1000, 100, True),
        "notebooks-ca_trust.crt": (0o444, 1000, 100, True),
    }
