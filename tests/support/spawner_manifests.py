"""The pod and PVC manifests KubeSpawner would create, built without a cluster.

    python spawner_manifests.py < jobs.json  ->  JSON on stdout, one result per job

A job is ``{"config_file": ..., "env": {...}, "users": [openBIS user ids]}``. With ``env``
added to the environment, it loads the config file the way JupyterHub does, makes the
configured authenticator and, per user id, the configured spawner; runs the authenticator's
``pre_spawn_start`` (the token hand-over) with an ``auth_state`` holding the session token
``token-for-<user id>``, then ``get_pod_manifest()`` and ``get_pvc_manifest()``.

A separate process because config files change process-wide state (the chart's selects
tornado's curl HTTP client, its z2jh module caches the values it reads). KubeSpawner only
reads a kubeconfig (``KUBECONFIG``); nothing talks to a cluster.
"""

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

from jupyterhub.app import JupyterHub
from jupyterhub.crypto import CryptKeeper
from jupyterhub.objects import Server
from kubernetes_asyncio.client import ApiClient
from traitlets.config.loader import PyFileConfigLoader


class User:
    """What a spawner and ``pre_spawn_start`` read of ``jupyterhub.user.User`` (the Kubernetes,
    Swarm, Slurm and Docker spawners' tests)."""

    def __init__(self, name, user_id=1):
        self.name = name
        self.id = user_id
        self.escaped_name = name
        self.url = f"/user/{name}/"
        self.groups = []

    async def get_auth_state(self):
        return {"openbis_token": f"token-for-{self.name}"}


async def manifests(config_file, env, user_ids):
    os.environ.update(env)
    CryptKeeper.clear_instance()
    path = Path(config_file).resolve()
    config = PyFileConfigLoader(path.name, str(path.parent)).load_config()
    app = JupyterHub(config=config)
    CryptKeeper.instance(config=config)  # the hand-over secret derives from its keys
    authenticator = app.authenticator_class(config=config)
    app.init_hub()  # the hub's URLs as user servers get them (hub_connect_url, ...)
    serialize = ApiClient().sanitize_for_serialization
    result = {
        "spawner_class": app.spawner_class.__module__ + "." + app.spawner_class.__name__,
    }
    users = result["users"] = {}
    for number, user_id in enumerate(user_ids, start=1):
        user = User(user_id, number)
        spawner = app.spawner_class(config=config, user=user, hub=app.hub)
        spawner.server = Server(base_url=user.url)
        spawner.api_token = "api-token"  # noqa: S105 (JupyterHub sets it before each start)
        await authenticator.pre_spawn_start(user, spawner)
        users[user_id] = {
            "pod": serialize(await spawner.get_pod_manifest()),
            "pvc": serialize(spawner.get_pvc_manifest()),
            "delete_pvc": spawner.delete_pvc,
            "remember_pvc_name": spawner.remember_pvc_name,
            "storage_pvc_ensure": spawner.storage_pvc_ensure,
        }
    await spawner.api.api_client.close()  # KubeSpawner's shared client, never used here
    return result


if __name__ == "__main__":
    results = []
    for job in json.load(sys.stdin):
        saved = dict(os.environ)
        with contextlib.redirect_stdout(sys.stderr):  # config files print
            results.append(asyncio.run(manifests(job["config_file"], job["env"], job["users"])))
        os.environ.clear()
        os.environ.update(saved)
    json.dump(results, sys.stdout)
