"""Docker Swarm (hub/swarm.py): the service our hub asks Swarm for, built without an engine
from hub/jupyterhub_config.py and the settings, as the hub builds it. What Swarm does with it
runs for real in tests/test_swarm.py."""

import asyncio
import re
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.objects import Server
from openbis_jupyterhub.hub import swarm
from traitlets.config.loader import PyFileConfigLoader

from tests.support.spawner_manifests import User

REPO = Path(__file__).resolve().parents[2]
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# openBIS user ids are at most 50 characters; escaping makes each special one three
LONG_ID = "Alice.Marie-Louise.Smith-Johnson@biol.ethz.ch"


def spawner_for(monkeypatch, tmp_path, user, **env):
    """The spawner our hub would make for ``user`` with these settings."""
    env = {
        "OPENBIS_URL": "https://openbis.example.org",
        "JUPYTERHUB_SPAWNER": "swarm",
        "JUPYTERHUB_CONFIG_D": str(tmp_path),
        "JUPYTERHUB_STATE_DIR": str(tmp_path),
        **env,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = PyFileConfigLoader("jupyterhub_config.py", str(REPO / "hub")).load_config()
    app = JupyterHub(config=config)
    assert app.spawner_class is swarm.OpenBISSwarmSpawner
    app.init_hub()  # the hub's URLs as user servers get them
    spawner = swarm.OpenBISSwarmSpawner(config=config, user=User(user), hub=app.hub)
    spawner.server = Server(base_url=f"/user/{user}/")
    spawner.api_token = "api-token"  # noqa: S105 (JupyterHub sets it before each start)
    return spawner


def spec(spawner) -> dict:
    return asyncio.run(spawner.service_spec())


def test_home_is_a_named_volume_not_a_bind_mount(monkeypatch, tmp_path):
    """dockerspawner#536: stock SwarmSpawner makes `type: bind` of the volume name, which
    Swarm rejects ("invalid bind mount source, must be an absolute path")."""
    spawner = spawner_for(monkeypatch, tmp_path, "JDoe", JUPYTERHUB_MEM_LIMIT="2G")
    service = spec(spawner)
    assert service["name"] == "jupyter--4a-44oe"
    task = service["task_template"]
    assert task["ContainerSpec"]["Mounts"][0] == {
        "Target": "/home/jovyan",
        "Source": "jupyterhub-user--4a-44oe",  # the name DockerSpawner gives it
        "Type": "volume",
        "ReadOnly": False,
    }
    assert "start-singleuser.sh" in task["ContainerSpec"]["Args"]
    assert task["Resources"]["Limits"]["MemoryBytes"] == 2 * 1024**3
    assert task["RestartPolicy"]["Condition"] == "none"
    assert task["Networks"] == [{"Target": "openbis-jupyterhub"}]
    assert service["labels"] == {swarm.NETWORK_LABEL: "openbis-jupyterhub"}
    assert service["endpoint_spec"] == {"Mode": "dnsrr"}  # no IPVS needed


def test_user_services_are_hardened_like_dockerspawners_containers(monkeypatch, tmp_path):
    """The settings of hub/docker.py, in Swarm's words; what they do to user code is checked
    on a worker in tests/test_swarm.py."""
    task = spec(spawner_for(monkeypatch, tmp_path, "JDoe"))["task_template"]
    container = task["ContainerSpec"]
    assert container["CapabilityDrop"] == ["ALL"] and container["CapabilityAdd"] == []
    assert container["Args"][:3] == ["setpriv", "--no-new-privs", "start-singleuser.sh"]
    assert container["ReadOnly"] is True
    assert container["Mounts"][1] == {
        "Target": "/tmp",
        "Source": None,
        "Type": "tmpfs",
        "ReadOnly": False,
        "TmpfsOptions": {"SizeBytes": 1024**3, "Mode": 0o1777},
    }
    assert task["Resources"]["Limits"]["Pids"] == 512

    task = spec(
        spawner_for(
            monkeypatch,
            tmp_path,
            "JDoe",
            JUPYTERHUB_CAP_ADD="NET_BIND_SERVICE",
            JUPYTERHUB_NO_NEW_PRIVILEGES="false",
            JUPYTERHUB_READ_ONLY_ROOT="false",
            JUPYTERHUB_PIDS_LIMIT="100",
            JUPYTERHUB_TMP_SIZE="64M",
            JUPYTERHUB_MEM_LIMIT="1G",
        )
    )["task_template"]
    container = task["ContainerSpec"]
    assert container["CapabilityAdd"] == ["NET_BIND_SERVICE"]
    assert container["Args"][0] == "start-singleuser.sh" and container["ReadOnly"] is False
    assert container["Mounts"][1]["TmpfsOptions"]["SizeBytes"] == 64 * 1024**2
    assert task["Resources"]["Limits"] == {"MemoryBytes": 1024**3, "Pids": 100}


def test_stock_swarmspawner_still_binds(monkeypatch, tmp_path):
    """The day this fails, a dockerspawner release has PR #537: drop our ``mounts``."""
    from dockerspawner import SwarmSpawner

    spawner = spawner_for(monkeypatch, tmp_path, "JDoe")
    assert [m["Type"] for m in SwarmSpawner.mounts.fget(spawner)] == ["bind"]


def test_nfs_homes_mount_each_users_directory(monkeypatch, tmp_path):
    spawner = spawner_for(
        monkeypatch,
        tmp_path,
        "JDoe",
        JUPYTERHUB_HOMES_NFS="nfs.example.org:/export/jupyterhub/",
        JUPYTERHUB_VOLUME_PREFIX="jupyterhub-nfs-",
    )
    spawner.load_state({"node_id": "abc123", "node_name": "worker-1"})
    task = spec(spawner)["task_template"]
    assert task["ContainerSpec"]["Mounts"][:1] == [
        {
            "Target": "/home/jovyan",
            "Source": "jupyterhub-nfs--4a-44oe",
            "Type": "volume",
            "ReadOnly": False,
            "VolumeOptions": {
                "DriverConfig": {
                    "Name": "local",
                    "Options": {
                        "type": "nfs",
                        "o": "addr=nfs.example.org,rw,nfsvers=4.2,hard",
                        "device": ":/export/jupyterhub/-4a-44oe",
                    },
                }
            },
        }
    ]
    # shared homes: the server may start on any node, wherever it ran before
    assert "Placement" not in task


def test_nfs_setting_must_name_server_and_path(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="JUPYTERHUB_HOMES_NFS='nfs.example.org'"):
        spawner_for(monkeypatch, tmp_path, "JDoe", JUPYTERHUB_HOMES_NFS="nfs.example.org")


def test_node_local_homes_pin_the_server_to_its_node(monkeypatch, tmp_path):
    constraints = "node.role == worker, node.labels.jupyter == true"
    spawner = spawner_for(monkeypatch, tmp_path, "JDoe", JUPYTERHUB_SWARM_CONSTRAINTS=constraints)
    # first start: any node the constraints allow
    assert spec(spawner)["task_template"]["Placement"] == {
        "Constraints": ["node.role == worker", "node.labels.jupyter == true"]
    }
    # the node is kept in the hub's database and survives stops (clear_state) and restarts
    spawner.node_id, spawner.node_name = "abc123", "worker-1"
    spawner.clear_state()
    state = spawner.get_state()
    again = spawner_for(monkeypatch, tmp_path, "JDoe", JUPYTERHUB_SWARM_CONSTRAINTS=constraints)
    again.load_state(state)
    assert spec(again)["task_template"]["Placement"]["Constraints"] == [
        "node.role == worker",
        "node.labels.jupyter == true",
        "node.id == abc123",
    ]


def test_long_user_ids_get_short_stable_distinct_service_names(monkeypatch, tmp_path):
    escaped = spawner_for(monkeypatch, tmp_path, LONG_ID).escaped_name
    assert len(f"jupyter-{escaped}") > 63  # what Swarm would refuse
    names = {
        user: spec(spawner_for(monkeypatch, tmp_path, user))["name"]
        for user in [LONG_ID, LONG_ID.replace("ethz", "uzh"), "jdoe"]
    }
    assert names["jdoe"] == "jupyter-jdoe"
    for name in names.values():
        assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert len(set(names.values())) == 3
    assert spec(spawner_for(monkeypatch, tmp_path, LONG_ID))["name"] == names[LONG_ID]
    # the volume keeps the full escaped id (Docker volume names may be long)
    volume = spec(spawner_for(monkeypatch, tmp_path, LONG_ID))["task_template"]
    assert volume["ContainerSpec"]["Mounts"][0]["Source"] == f"jupyterhub-user-{escaped}"


def test_service_name_cut():
    assert swarm.service_name("a" * 63, "x") == "a" * 63
    cut = swarm.service_name("jupyter-" + "ab-" * 30, "key")
    assert len(cut) == 63 and cut.endswith("-2c70e12b") and "--" not in cut[-10:]
