"""The Docker API requests OpenBISDockerSpawner itself makes (its create_object and move_certs,
through docker-py), recorded instead of sent: what the Docker API filter must pass, for its
unit tests and the real-engine bypass test."""

import asyncio
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from unittest import mock

import docker
from jupyterhub.objects import Hub, Server
from openbis_jupyterhub.hub import docker as hub_docker
from openbis_jupyterhub.hub import settings
from traitlets.config import Config


class Recorder(docker.APIClient):
    """docker-py as the spawner uses it, recording each request instead of sending it."""

    def __init__(self):
        super().__init__(base_url="unix:///nonexistent", version="1.41")
        self.sent = []

    def _post(self, url, **kwargs):
        self.sent.append(("POST", url, kwargs))

    def _put(self, url, **kwargs):
        self.sent.append(("PUT", url, kwargs))
        return SimpleNamespace(status_code=200)

    def _raise_for_status(self, response):
        pass

    def _result(self, response, json=False, binary=False):
        return {"Id": "0" * 64}

    def inspect_image(self, image):
        return {"Config": {"Cmd": ["start-singleuser.sh"]}}

    def remove_container(self, *args, **kwargs):
        pass


def run_apart(coroutine):
    """``asyncio.run(coroutine)`` in a thread of its own: in a session that used Playwright's
    sync API, the test's thread already has an event loop running."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@functools.cache
def sent_by_spawner(env: tuple[tuple[str, str], ...], server="", image=None) -> dict:
    """What OpenBISDockerSpawner sends for JDoe with the settings ``env`` (environment items;
    settings.apply and hub/docker.py's configure, as jupyterhub_config.py runs them), for
    JDoe's usual server or their named ``server`` running ``image`` (environment versions):
    {"create": (query params, body), "staging": (params, body), "archive": (params, tar)}."""
    c, values = Config(), settings.read(dict(env))
    settings.apply(c, values)
    hub_docker.configure(c, {**values, "JUPYTERHUB_INTERNAL_SSL": True})
    user = mock.Mock(url="/user/JDoe/", escaped_name="JDoe", server=Server(base_url="/user/JDoe/"))
    user.name = "JDoe"
    orm_spawner = mock.Mock(server=None, user_options={})
    orm_spawner.name = server
    spawner = hub_docker.OpenBISDockerSpawner(
        config=c, user=user, hub=Hub(), orm_spawner=orm_spawner
    )
    spawner.image = image or spawner.image
    recorder = Recorder()
    with mock.patch.object(hub_docker.OpenBISDockerSpawner, "_client", recorder):
        run_apart(spawner.create_object())
        paths = {"keyfile": __file__, "cafile": __file__}  # any readable files
        run_apart(spawner.move_certs(paths))
    (_, _, create), (_, _, staging), (_, _, archive) = recorder.sent
    assert create["headers"]["Content-Type"] == "application/json"
    return {
        "create": (create["params"], json.loads(create["data"])),
        "staging": (staging["params"], json.loads(staging["data"])),
        "archive": (archive["params"], archive["data"]),
    }
