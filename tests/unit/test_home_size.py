"""Bounded homes (JUPYTERHUB_HOME_SIZE): the setting, what each platform's spawner is told, and
how the user's server reads its home (singleuser/home.py). The Docker engine's refusal runs for
real in tests/test_home_size.py; a full home in tests/test_singleuser_image.py."""

import errno
import re

import pytest
from openbis_jupyterhub import contract
from openbis_jupyterhub.hub import kubernetes, settings
from openbis_jupyterhub.singleuser import home
from traitlets.config import Config

from tests.unit.test_swarm import spawner_for, spec

OPENBIS = {"OPENBIS_URL": "https://o.example.org"}


@pytest.mark.parametrize(
    ("text", "normalized", "size"),
    [("10G", "10G", 10 * 1024**3), ("512m", "512M", 512 * 1024**2), ("1T", "1T", 1024**4)],
)
def test_home_size_takes_dockers_binary_units(text, normalized, size):
    value = settings.read({**OPENBIS, "JUPYTERHUB_HOME_SIZE": text})["JUPYTERHUB_HOME_SIZE"]
    assert value == normalized
    assert contract.size_bytes(value) == size


def test_home_size_is_unbounded_by_default():
    assert settings.read(OPENBIS)["JUPYTERHUB_HOME_SIZE"] is None


@pytest.mark.parametrize("text", ["10", "10GB", "1.5G", "0G", "10Gi", "ten"])
def test_home_size_refuses_what_docker_and_kubernetes_would_read_differently(text):
    with pytest.raises(settings.SettingError, match=re.escape(f"JUPYTERHUB_HOME_SIZE={text!r}")):
        settings.read({**OPENBIS, "JUPYTERHUB_HOME_SIZE": text})


# --- Kubernetes: the PVC's capacity -------------------------------------------------------------


def kube(**env):
    c = Config()
    kubernetes.configure(c, settings.read(env, complete=False))
    return c


def test_kubernetes_home_size_is_the_pvc_capacity_in_the_same_bytes():
    c = kube(JUPYTERHUB_HOME_SIZE="20G")
    assert c.KubeSpawner.storage_capacity == "20Gi"  # Kubernetes' "20G" would be 10^9 bytes
    # merged into the environment the chart or a site config may give servers
    environment = c.KubeSpawner.environment.get_value({"OTHER": "kept"})
    assert environment == {"OTHER": "kept", contract.ENV_HOME_SIZE: "20G"}


def test_kubernetes_keeps_the_older_storage_capacity_and_its_default():
    assert kube(JUPYTERHUB_STORAGE_CAPACITY="20Gi").KubeSpawner.storage_capacity == "20Gi"
    assert kube().KubeSpawner.storage_capacity == "10Gi"
    with pytest.raises(settings.SettingError, match="set only JUPYTERHUB_HOME_SIZE"):
        kube(JUPYTERHUB_HOME_SIZE="20G", JUPYTERHUB_STORAGE_CAPACITY="20Gi")


# --- Swarm: the node creates the home with the size option --------------------------------------


def test_swarm_homes_carry_the_size_option(monkeypatch, tmp_path):
    task = spec(spawner_for(monkeypatch, tmp_path, "JDoe", JUPYTERHUB_HOME_SIZE="10G"))
    container = task["task_template"]["ContainerSpec"]
    assert container["Mounts"][0] == {
        "Target": "/home/jovyan",
        "Source": "jupyterhub-user--4a-44oe",
        "Type": "volume",
        "ReadOnly": False,
        "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"size": "10G"}}},
    }
    assert f"{contract.ENV_HOME_SIZE}=10G" in container["Env"]


def test_swarm_refuses_a_size_for_nfs_homes(monkeypatch, tmp_path):
    with pytest.raises(settings.SettingError, match="quotas on the NFS server"):
        spawner_for(
            monkeypatch,
            tmp_path,
            "JDoe",
            JUPYTERHUB_HOME_SIZE="10G",
            JUPYTERHUB_HOMES_NFS="nfs.example.org:/export",
        )


# --- the user's server -----------------------------------------------------------------------


def test_bytes_read_as_the_lab_shows_them():
    assert [home.human(n) for n in (0, 1000, 3500, 1.2 * 1024**3)] == [
        "0 B",
        "1000 B",
        "3.4 kB",
        "1.2 GB",
    ]


def test_a_full_disk_is_found_below_the_error_that_hid_it():
    """A failed save restores its backup; for a new file there is none, and that error is the
    one jupyter_server wraps."""
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise FileNotFoundError(errno.ENOENT, "No such file: .~new.ipynb")  # noqa: B904
    except FileNotFoundError as e:
        hidden = e
    assert home.out_of_space(hidden)
    assert not home.out_of_space(PermissionError(errno.EACCES, "denied"))
