"""Bounded homes on Docker (hub/docker.py) against the real engine of this machine, whose
data-root is not on XFS with project quotas: it cannot enforce JUPYTERHUB_HOME_SIZE, so the
hub must refuse to start, and a home must never be created without the bound. (The enforced
path needs an XFS data-root mounted with pquota; docs/admin-guide.md, "Disk".)"""

import logging
import uuid

import docker
import pytest
from openbis_jupyterhub.hub.docker import OpenBISDockerSpawner
from traitlets.config import Config

from tests.support.spawner_manifests import User
from tests.support.spawner_requests import run_apart

pytestmark = pytest.mark.docker


@pytest.fixture
def engine():
    return docker.APIClient(version="auto")


@pytest.fixture
def prefix(engine):
    """A volume prefix of this test's own; every volume with it is removed afterwards."""
    prefix = f"test-home-{uuid.uuid4().hex[:8]}-"
    yield prefix
    for volume in engine.volumes(filters={"name": prefix})["Volumes"] or []:
        engine.remove_volume(volume["Name"])


def test_the_hub_refuses_to_start_when_the_engine_cannot_bound_homes(hub_factory, engine, prefix):
    with pytest.raises(RuntimeError, match="JupyterHub exited") as exited:
        hub_factory(JUPYTERHUB_HOME_SIZE="10G", JUPYTERHUB_VOLUME_PREFIX=prefix)
    log = str(exited.value)
    # the setting, the engine's own reason, and the fix
    assert "JUPYTERHUB_HOME_SIZE=10G: the Docker engine cannot limit the size of volumes" in log
    assert "quota size requested but no quota support" in log
    assert "XFS mounted with the pquota option" in log
    # the probe volume is gone (the engine made none)
    assert not engine.volumes(filters={"name": prefix})["Volumes"]


def test_without_the_setting_the_hub_starts_as_before(hub_factory, prefix):
    hub = hub_factory(JUPYTERHUB_VOLUME_PREFIX=prefix)
    assert hub.api("/users").status_code == 200


def spawner(prefix: str) -> OpenBISDockerSpawner:
    c = Config()
    c.DockerSpawner.volumes = {prefix + "{username}": "/home/jovyan"}
    c.OpenBISDockerSpawner.home_size = "10G"
    return OpenBISDockerSpawner(config=c, user=User("JDoe"))


def test_a_new_home_is_never_created_without_its_bound(engine, prefix):
    """Even past the hub's check (an engine changed since): the server does not start."""
    with pytest.raises(docker.errors.APIError, match="no quota support"):
        run_apart(spawner(prefix).create_home_volume())
    assert not engine.volumes(filters={"name": prefix})["Volumes"]


def test_a_home_from_before_the_setting_is_reported_unbounded(engine, prefix, caplog):
    engine.create_volume(f"{prefix}-4a-44oe")  # JDoe's home, made without a size
    with caplog.at_level(logging.WARNING):
        volume = run_apart(spawner(prefix).create_home_volume())
    assert volume["Name"] == f"{prefix}-4a-44oe" and not volume["Options"]
    assert (
        f"JDoe's home volume {prefix}-4a-44oe was created without a size limit "
        "(before JUPYTERHUB_HOME_SIZE was set) and stays unbounded"
    ) in caplog.text
