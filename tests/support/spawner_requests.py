"""The Docker API requests OpenBISDockerSpawner itself makes (its create_object and move_certs,
through docker-py), recorded instead of sent: what the Docker API filter must pass, for its
unit tests and the real-engine bypass test."""

import asyncio
import functools
import json
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


@functools.cache
def sent_by_spawner(env: tuple[tuple[str, str], ...]) -> dict:
    """What OpenBISDockerSpawner sends for JDoe with the settings ``env`` (environment items;
    settings.apply and hub/docker.py's configure, as jupyterhub_config.py runs them):
    {"create": (query params, body), "staging": (params, body), "archive": (params, tar)}."""
    c, values = Config(), settings.read(dict(env))
    settings.apply(c, values)
    hub_docker.configure(c, {**values, "JUPYTERHUB_INTERNAL_SSL": True})
    user = mock.Mock(url="/user/JDoe/", escaped_name="JDoe", server=Server(base_url="/user/JDoe/"))
    user.name = "JDoe"
    spawner = hub_docker.OpenBISDockerSpawner(config=c, user=user, hub=Hub())
    recorder = Recorder()
    with mock.patch.object(hub_docker.OpenBISDockerSpawner, "_client", recorder):
        asyncio.run(spawner.create_object())
        paths = {"keyfile": __file__, "cafile": __file__}  # any readable files
        asyncio.run(spawner.move_certs(paths))
    (_, _, create), (_, _, staging), (_, _, archive) = recorder.sent
    assert create["headers"]["Content-Type"] == "application/json"
    return {
        "create": (create["params"], json.loads(create["data"])),
        "staging": (staging["params"], json.loads(staging["data"])),
        "archive": (archive["params"], archive["data"]),
    }
