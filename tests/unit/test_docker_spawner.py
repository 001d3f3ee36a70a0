"""OpenBISDockerSpawner (hub/docker.py): a started server is reported once it listens. Real
sockets on 127.0.0.1, no Docker."""

import asyncio
import socket

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
