"""The spawner table (hub/spawners.py): every JUPYTERHUB_SPAWNER value becomes a spawner class
JupyterHub finds, pyproject.toml's entry points name ours, and settings a spawner cannot
honour are refused with the reason."""

import re
import tomllib
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.spawner import Spawner
from openbis_jupyterhub.hub import settings, spawners
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[2]
# what every spawner needs set (slurm: the image's path on the compute nodes)
ENV = {"OPENBIS_URL": "https://openbis.example.org", "JUPYTERHUB_SLURM_IMAGE": "/images/singleuser"}


@pytest.mark.parametrize("name", sorted(spawners.SPAWNERS))
def test_every_spawner_is_a_class_jupyterhub_finds(name):
    c = Config()
    spawners.configure(c, settings.read({**ENV, "JUPYTERHUB_SPAWNER": name}))
    spawner_class = JupyterHub(config=c).spawner_class
    assert issubclass(spawner_class, Spawner)
    if c.JupyterHub.spawner_class.startswith("openbis-"):  # ours: defined in the module
        assert spawner_class.__module__ == spawners.SPAWNERS[name].module


def test_our_spawner_classes_are_entry_points():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["jupyterhub.spawners"]
    ours = {s.spawner_class for s in spawners.SPAWNERS.values()}
    assert set(entry_points) == {name for name in ours if name.startswith("openbis-")}
    for name, spawner in spawners.SPAWNERS.items():
        if spawner.spawner_class in entry_points:
            assert entry_points[spawner.spawner_class].startswith(spawner.module + ":"), name


def test_only_the_table_names_are_accepted():
    with pytest.raises(settings.SettingError) as e:
        settings.read({**ENV, "JUPYTERHUB_SPAWNER": "podman"})
    assert re.findall(r"\w+", str(e.value).split("one of", 1)[1]) == list(spawners.SPAWNERS)


@pytest.mark.parametrize("name", sorted(spawners.SPAWNERS))
def test_internal_ssl_is_refused_by_spawners_it_cannot_work_with(name):
    values = settings.read({**ENV, "JUPYTERHUB_INTERNAL_SSL": "true"})
    reason = spawners.SPAWNERS[name].no_internal_ssl
    if not reason:
        c = Config()
        spawners.configure(c, values, name)
        assert c.JupyterHub.internal_ssl is True
        return
    with pytest.raises(settings.SettingError, match=re.escape(reason)):
        spawners.configure(Config(), values, name)
