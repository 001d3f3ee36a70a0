"""OpenBISDockerSpawner (hub/docker.py): a started server is reported once it listens (real
sockets on 127.0.0.1); the certificates' staging container is limited as the user's. No
Docker."""

import asyncio
import socket

import docker
from openbis_jupyterhub.hub.docker import OpenBISDockerSpawner


def test_start_returns_once_the_server_listens():
    async def scenario():
        probe = socket.create_server(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens: connections are refused
        spawner = OpenBISDockerSpawner(ready_poll_interval=0.01, ready_poll_limit=60)
        waiting = asyncio.create_task(spawner._wait_until_listening("127.0.0.1", port))
        await asyncio.sleep(0.2)
        still_waiting = not waiting.done()
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        await asyncio.wait_for(waiting, 30)
        server.close()
        return still_waiting

    assert asyncio.run(scenario())  # waited while refused, returned once it listened


def test_start_leaves_the_rest_of_the_wait_to_jupyterhub():
    async def scenario():
        probe = socket.create_server(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        spawner = OpenBISDockerSpawner(ready_poll_interval=0.01, ready_poll_limit=0.2)
        # returns (no error) after ready_poll_limit: JupyterHub's own wait takes over
        await asyncio.wait_for(spawner._wait_until_listening("127.0.0.1", port), 30)

    asyncio.run(scenario())


def test_the_certificates_staging_container_has_the_users_cpu_limit(tmp_path, monkeypatch):
    """move_certs' container passes the Docker API filter, which requires the configured CPU
    limit of every container, as DockerSpawner sets it on the user's."""
    key = tmp_path / "server.key"
    key.write_text("key")
    created = []

    async def call(method, *args, **kwargs):
        if method == "create_container":
            created.append(kwargs["host_config"])
            return {"Id": "staging"}

    async def pull_image(image):
        pass

    spawner = OpenBISDockerSpawner(cpu_limit=1.5, mem_limit="2G")
    api = docker.APIClient(base_url="unix:///nonexistent", version="1.41")  # never connects
    monkeypatch.setattr(OpenBISDockerSpawner, "client", property(lambda self: api))
    spawner.docker, spawner.pull_image = call, pull_image
    spawner.format_volume_name = lambda name, spawner: name
    monkeypatch.setattr(OpenBISDockerSpawner, "container_name", "jupyter-jdoe")
    asyncio.run(spawner.move_certs({"keyfile": str(key)}))
    [host_config] = created
    assert (host_config["CpuPeriod"], host_config["CpuQuota"]) == (100_000, 150_000)
