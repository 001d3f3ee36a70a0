"""OpenBISDockerSpawner (hub/docker.py): a started server is reported once it listens, and
several users' Docker calls run at once. Real sockets on 127.0.0.1, no Docker."""

import asyncio
import socket
import threading

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


def test_docker_calls_of_several_users_run_at_once():
    # three calls that can only finish together: one thread (DockerSpawner's) would hang
    barrier = threading.Barrier(3, timeout=30)
    spawner = OpenBISDockerSpawner(docker_threads=3)
    calls = [spawner.executor.submit(barrier.wait) for _ in range(3)]
    assert sorted(call.result(timeout=60) for call in calls) == [0, 1, 2]
