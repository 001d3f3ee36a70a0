"""The Docker API filter's rules: what DockerSpawner sends passes, anything else is refused."""

import io
import json
import socket
import tarfile

import pytest

from docker_proxy import Refused, Rules, check_archive, check_create, check_pull, route
from docker_proxy.server import FilterHandler, Server

RULES = Rules(
    images=frozenset({"openbis-jupyterhub/singleuser:latest"}),
    container_prefix="jupyter-",
    volume_prefix="jupyterhub-user-",
    network="openbis-jupyterhub",
)


def spawner_request(**host_config):
    """The body DockerSpawner sends for JDoe with our hub/docker.py settings."""
    host = {
        "Binds": ["jupyterhub-user--4a-44oe:/home/jovyan:rw"],
        "NetworkMode": "openbis-jupyterhub",
        "AutoRemove": True,
        "CapDrop": ["ALL"],
        "CapAdd": [],
        "SecurityOpt": ["no-new-privileges:true"],
        "PidsLimit": 512,
        "ReadonlyRootfs": True,
        "Tmpfs": {"/tmp": "rw,nosuid,nodev,size=1G,mode=1777"},
        "Memory": 4 * 1024**3,
        "MemorySwap": 4 * 1024**3,
        **host_config,
    }
    return {
        "Image": "openbis-jupyterhub/singleuser:latest",
        "Env": ["JUPYTERHUB_USER=JDoe"],
        "HostConfig": host,
    }


def create(config, name="jupyter--4a-44oe"):
    check_create(RULES, f"name={name}", json.dumps(config).encode())


def test_what_the_spawner_needs_passes():
    assert route("GET", "/_ping") == ("ping", None)
    assert route("GET", "/v1.41/version") == ("ping", None)
    assert route("POST", "/v1.41/containers/create") == ("create", None)
    assert route("GET", "/v1.41/containers/jupyter--4a-44oe/json") == (
        "inspect",
        "jupyter--4a-44oe",
    )
    assert route("POST", "/v1.41/containers/0123abcd/start") == ("start", "0123abcd")
    assert route("POST", "/v1.41/containers/0123abcd/stop") == ("stop", "0123abcd")
    assert route("DELETE", "/v1.41/containers/0123abcd") == ("remove", "0123abcd")
    assert route("GET", "/v1.41/images/openbis-jupyterhub/singleuser:latest/json") == (
        "image",
        "openbis-jupyterhub/singleuser:latest",
    )
    assert route("PUT", "/v1.41/containers/jupyter--4a-44oe.certs/archive") == (
        "archive",
        "jupyter--4a-44oe.certs",
    )
    create(spawner_request())
    check_pull(RULES, "fromImage=openbis-jupyterhub%2Fsingleuser&tag=latest")
    # the certificates' staging container (hub/docker.py, move_certs) and its files
    create(
        {
            "Image": "openbis-jupyterhub/singleuser:latest",
            "HostConfig": {
                "Binds": ["jupyterhub-user--4a-44oe.certs:/certs:rw"],
                "NetworkMode": "openbis-jupyterhub",
                "ReadonlyRootfs": True,
            },
        },
        name="jupyter--4a-44oe.certs",
    )
    check_archive("path=%2Fcerts", tar(("user-JDoe.key", 0o400), ("notebooks-ca_trust.crt", 0o444)))


def tar(*members, kind=tarfile.REGTYPE, linkname=""):
    """An uncompressed tar of (name, mode) members, as docker-py's put_archive sends it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, mode in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, linkname, mode
            data = b"-----BEGIN CERTIFICATE-----" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("path=%2F", tar(("x.key", 0o400))),
        ("path=%2Fhome%2Fjovyan", tar(("x.key", 0o400))),
        ("path=%2Fcerts%2F..%2Fetc", tar(("x.key", 0o400))),
        ("", tar(("x.key", 0o400))),
        ("path=%2Fcerts&path=%2Fetc", tar(("x.key", 0o400))),
        ("path=%2Fcerts", tar(("../etc/passwd", 0o644))),
        ("path=%2Fcerts", tar(("sub/x.key", 0o400))),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.SYMTYPE, linkname="/etc/shadow")),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.LNKTYPE, linkname="/etc/shadow")),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.DIRTYPE)),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.CHRTYPE)),
        ("path=%2Fcerts", tar(("x", 0o4755))),
        ("path=%2Fcerts", b"not a tar"),
        ("path=%2Fcerts", b"\x1f\x8b" + tar(("x.key", 0o400))),
        ("path=%2Fcerts", tar(*[(f"f{i}", 0o644) for i in range(600)])),
    ],
)
def test_files_go_into_the_certificates_volume_only(query, body):
    with pytest.raises(Refused):
        check_archive(query, body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1.41/containers/jupyter--4a-44oe/exec"),
        ("POST", "/v1.41/exec/abc/start"),
        ("POST", "/v1.41/build"),
        ("GET", "/v1.41/containers/json"),
        ("GET", "/v1.41/containers/abc/logs"),
        ("POST", "/v1.41/containers/abc/attach"),
        ("POST", "/v1.41/containers/abc/archive"),
        ("HEAD", "/v1.41/containers/abc/archive"),
        ("GET", "/v1.41/containers/abc/archive"),
        ("POST", "/v1.41/containers/abc/update"),
        ("POST", "/v1.41/networks/create"),
        ("POST", "/v1.41/networks/x/connect"),
        ("POST", "/v1.41/volumes/create"),
        ("DELETE", "/v1.41/volumes/jupyterhub-user--4a-44oe"),
        ("GET", "/v1.41/events"),
        ("POST", "/v1.41/swarm/init"),
        ("POST", "/v1.41/plugins/pull"),
        ("GET", "/v1.41/secrets"),
        ("POST", "/v1.41/images/load"),
        ("DELETE", "/v1.41/images/openbis-jupyterhub/singleuser:latest"),
        ("POST", "/v1.41/system/prune"),
        ("POST", "/v1.41/containers/prune"),
        # path tricks
        ("GET", "/v1.41/containers/../images/json"),
        ("GET", "/v1.41/containers/%2e%2e/json"),
        ("POST", "/v1.41//containers/create"),
        ("POST", "/v1.41/containers/create/../../build"),
        ("GET", "/v1.41/containers/a b/json"),
        ("GET", "/v1.41/containers/a\x00/json"),
    ],
)
def test_everything_else_is_refused(method, path):
    with pytest.raises(Refused):
        route(method, path)


@pytest.mark.parametrize(
    "change",
    [
        {"HostConfig": {"Privileged": True}},
        {"HostConfig": {"NetworkMode": "host"}},
        {"HostConfig": {"NetworkMode": "bridge"}},
        {"HostConfig": {"NetworkMode": "container:jupyter-alice"}},
        {"HostConfig": {"PidMode": "host"}},
        {"HostConfig": {"IpcMode": "host"}},
        {"HostConfig": {"UTSMode": "host"}},
        {"HostConfig": {"UsernsMode": "host"}},
        {"HostConfig": {"CgroupnsMode": "host"}},
        {"HostConfig": {"PidMode": "container:jupyter-alice"}},
        {"HostConfig": {"Binds": ["/:/host"]}},
        {"HostConfig": {"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}},
        {"HostConfig": {"Binds": ["openbis-jupyterhub_hub-state:/srv"]}},
        {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}},
        {"HostConfig": {"Mounts": [{"Type": "volume", "Source": "other", "Target": "/x"}]}},
        {"HostConfig": {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]}},
        {"HostConfig": {"CapAdd": ["SYS_ADMIN"]}},
        {"HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}},
        {"HostConfig": {"SecurityOpt": ["apparmor=unconfined"]}},
        {"HostConfig": {"SecurityOpt": ["label=disable"]}},
        {"HostConfig": {"Sysctls": {"net.ipv4.ip_forward": "1"}}},
        {"HostConfig": {"VolumesFrom": ["openbis-jupyterhub-hub-1"]}},
        {"HostConfig": {"PortBindings": {"8888/tcp": [{"HostPort": "80"}]}}},
        {"HostConfig": {"CgroupParent": "/"}},
        {"HostConfig": {"Runtime": "runc-unsafe"}},
        {"HostConfig": {"OomKillDisable": True}},
        {"Image": "debian:bookworm-slim"},
        {"Image": "openbis-jupyterhub/hub:latest"},
        {"User": "root"},
        {"User": "0:0"},
        {"NetworkingConfig": {"EndpointsConfig": {"host": {}}}},
    ],
)
def test_dangerous_containers_are_refused(change):
    config = spawner_request(**change.pop("HostConfig", {}))
    config.update(change)
    with pytest.raises(Refused):
        create(config)


def test_other_names_bodies_and_images_are_refused():
    for name in ("openbis-jupyterhub-hub-2", "", "jupyter"):
        with pytest.raises(Refused):
            create(spawner_request(), name=name)
    for body in (b"not json", b"[]", b"{" + b" " * 300_000 + b"}"):
        with pytest.raises(Refused):
            check_create(RULES, "name=jupyter-x", body)
    for query in ("fromImage=debian&tag=bookworm-slim", "fromImage=openbis-jupyterhub%2Fhub"):
        with pytest.raises(Refused):
            check_pull(RULES, query)


def test_names_of_our_containers():
    assert RULES.owns("/jupyter--4a-44oe")
    assert not RULES.owns("/openbis-jupyterhub-hub-1")
    assert not RULES.owns("/jupyterx")


def test_many_connections_at_once_wait_their_turn(tmp_path):
    """A hub starting many servers at once opens a connection per Docker call, as docker-py
    does (a timeout makes the socket non-blocking): none may fail with EAGAIN while the
    filter is busy (socketserver's default backlog is 5)."""
    path = str(tmp_path / "docker.sock")
    server = Server(path, FilterHandler)  # listening, accepting nothing yet
    clients = []
    try:
        for _ in range(64):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.settimeout(5)
            clients.append(client)
            client.connect(path)
    finally:
        for client in clients:
            client.close()
        server.server_close()
