"""OpenBISDockerSpawner (hub/docker.py): a started server is reported once it answers, and
several users' Docker calls run at once. A real HTTP server on 127.0.0.1, no Docker."""

import asyncio
import threading

from openbis_jupyterhub.hub.docker import OpenBISDockerSpawner
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets


class StartingServer(web.RequestHandler):
    """Answers 503 (as a server still starting behind a proxy would) ``starting`` times,
    then redirects, as a ready single-user server does on its base URL."""

    def initialize(self, seen, starting):
        self.seen = seen
        self.starting = starting

    def get(self):
        self.seen.append(self.request.path)
        if len(self.seen) <= self.starting:
            raise web.HTTPError(503)
        self.redirect("/user/jdoe/lab")


def test_start_returns_once_the_server_answers_not_before():
    async def scenario():
        seen = []
        app = web.Application([(r"/user/jdoe/", StartingServer, {"seen": seen, "starting": 3})])
        [sock] = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets([sock])
        spawner = OpenBISDockerSpawner(ready_poll_interval=0.01)
        await spawner._wait_until_answers(f"http://127.0.0.1:{sock.getsockname()[1]}/user/jdoe/")
        server.stop()
        return seen

    assert asyncio.run(scenario()) == ["/user/jdoe/"] * 4  # three 503s, then the redirect


def test_start_keeps_looking_while_nothing_listens():
    async def scenario():
        [sock] = bind_sockets(0, "127.0.0.1")
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there: connections are refused
        spawner = OpenBISDockerSpawner(ready_poll_interval=0.01, ready_poll_limit=0.3)
        # gives up after ready_poll_limit, leaving the rest of the wait to JupyterHub
        await spawner._wait_until_answers(f"http://127.0.0.1:{port}/user/jdoe/")

    asyncio.run(scenario())


def test_docker_calls_of_several_users_run_at_once():
    # three calls that can only finish together: one thread (DockerSpawner's) would hang
    barrier = threading.Barrier(3, timeout=30)
    spawner = OpenBISDockerSpawner(docker_threads=3)
    calls = [spawner.executor.submit(barrier.wait) for _ in range(3)]
    assert sorted(call.result(timeout=60) for call in calls) == [0, 1, 2]
