"""OpenBISDockerSpawner (hub/docker.py): a started server is reported once it listens (real
sockets on 127.0.0.1); which environment a server runs and the names of its Docker objects;
the certificates' staging container is limited as the user's. No Docker: the engine's answers
are stubbed."""

import asyncio
import socket
from types import SimpleNamespace

import docker
import pytest
from openbis_jupyterhub.hub.docker import OpenBISDockerSpawner
from tornado import web

HUB = SimpleNamespace(public_host="", api_url="http://hub:8081/hub/api", base_url="/hub/")
ENVIRONMENTS = {"2026.12": "site/singleuser:2026.12", "2026.06": "site/singleuser:2026.06"}
IDS = {image: f"sha256:{n}" * 8 for n, image in enumerate(ENVIRONMENTS.values())}


def spawner(name="", **config):
    s = OpenBISDockerSpawner(
        user=SimpleNamespace(name="JDoe", url="/user/JDoe/"),
        hub=HUB,
        orm_spawner=SimpleNamespace(name=name, server=None, user_options={}),
        environments=ENVIRONMENTS,
        image=ENVIRONMENTS["2026.12"],
        prefix="jupyter",
        **config,
    )

    async def docker(method, *args, **kwargs):
        assert method == "inspect_image"
        return {"Id": IDS[args[0]]}

    s.docker = docker
    return s


@pytest.mark.parametrize(
    ("name", "options", "label"),
    [
        ("", {}, "2026.12"),  # the ELN's one-click path: no form, the current one
        ("", {"environment": "2026.06"}, "2026.06"),  # picked in the spawn form
        ("", {"environment": "2025.01"}, "2026.12"),  # removed by the admin since
        ("env-2026-06", {"environment": "2026.12"}, "2026.06"),  # a named server: its own
    ],
)
def test_each_server_runs_the_environment_it_was_started_for(name, options, label):
    s = spawner(name)
    asyncio.run(s._run_apply_user_options(options))
    assert (s.environment_label, s.image, s.image_id) == (
        label, ENVIRONMENTS[label], IDS[ENVIRONMENTS[label]]
    )  # fmt: skip
    env = s.get_env()
    assert (env["OPENBIS_ENVIRONMENT"], env["OPENBIS_IMAGE_ID"]) == (label, s.image_id)


def test_named_servers_are_the_kept_environments_only():
    for name in ("mine", "env-2026-12", "2026.06"):
        with pytest.raises(web.HTTPError, match="earlier environments"):
            asyncio.run(spawner(name)._run_apply_user_options({}))


def test_the_spawn_form_offers_the_environments_when_there_is_a_choice():
    form = asyncio.run(spawner().get_options_form())
    assert '<option value="2026.12">2026.12 (current)' in form
    assert '<option value="2026.06">2026.06' in form
    assert spawner().options_from_form({"environment": ["2026.06"]}) == {"environment": "2026.06"}
    assert asyncio.run(spawner("env-2026-06").get_options_form()) == ""  # named: no form
    link = spawner()  # the ELN's sign-in link: /hub/spawn/JDoe?next=/user/JDoe/notebooks/...
    link.handler = SimpleNamespace(get_argument=lambda name, default: "/user/JDoe/notebooks/x")
    assert asyncio.run(link.get_options_form()) == ""
    one = spawner()
    one.environments = {"a": "x:1"}
    assert asyncio.run(one.get_options_form()) == ""  # no choice: no form


def test_a_named_server_shares_the_home_but_not_the_certificates():
    config = {
        "volumes": {"jupyterhub-user-{username}": "/home/jovyan"},
        "certs_volume_name": "jupyterhub-user-{username}{server_suffix}.certs",
    }
    usual, named = spawner(**config), spawner("env-2026-06", **config)
    assert usual.object_name == "jupyter--4a-44oe"
    assert named.object_name == "jupyter--4a-44oe--env-2d2026-2d06"
    for s in (usual, named):
        assert s.format_volume_name("jupyterhub-user-{username}", s) == "jupyterhub-user--4a-44oe"
    assert usual.format_volume_name(usual.certs_volume_name, usual) == (
        "jupyterhub-user--4a-44oe.certs"
    )
    assert named.format_volume_name(named.certs_volume_name, named) == (
        "jupyterhub-user--4a-44oe--env-2d2026-2d06.certs"
    )


def test_a_saved_image_id_finds_its_kept_environment():
    s = spawner()
    found = asyncio.run(s.find_environment(IDS["site/singleuser:2026.06"]))
    assert found == ("2026.06", "env-2026-06")
    assert asyncio.run(s.find_environment(IDS["site/singleuser:2026.12"])) is None  # current
    assert asyncio.run(s.find_environment("sha256:gone")) is None


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


def test_named_servers_are_named_as_jupyterhub_requires():
    from jupyterhub.slugs import is_valid_safe_slug
    from openbis_jupyterhub.hub.docker import named_server

    for label, name in [
        ("2026.06", "env-2026-06"),
        ("R4_Octave7", "env-r4-octave7"),
        ("a.", "env-a"),
    ]:
        assert named_server(label) == name and is_valid_safe_slug(name)


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
