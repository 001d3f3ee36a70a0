"""The Docker API filter against the real engine: every class of bypass a taken-over hub could
try (keys spelled in another case or folded, repeated objects, old API versions, queries Go
reads differently, form bodies, bodies where none belong, fields the spawner never sends,
root, another user's volumes, also for a named server of a kept earlier image, another image,
archives with extension headers) is sent through
the real filter (our docker-proxy image, as compose.yaml runs it) to the real engine. Whatever
the filter answers, the test then asks the engine: with ``docker inspect`` and from inside the
running container, no container may have a setting the filter refuses, and none may exist that
is not named as ours. A bypass the unit tests (tests/unit/test_docker_proxy.py) miss fails here.
"""

import functools
import json
import re
import socket
import subprocess
import tarfile
import time
import uuid
from io import BytesIO

import pytest

from tests.support.images import docker
from tests.support.spawner_requests import sent_by_spawner

pytestmark = pytest.mark.docker

RUN = uuid.uuid4().hex[:6]
PREFIX = f"bypass{RUN}"  # JUPYTERHUB_CONTAINER_PREFIX
VOLUMES = f"bypass{RUN}-user-"  # JUPYTERHUB_VOLUME_PREFIX
NETWORK = f"bypass{RUN}"
USER = "-4a-44oe"  # JDoe, escaped as DockerSpawner does
NAME = f"{PREFIX}-{USER}"
NAMED = f"{NAME}--env-2d2026-2d06"  # JDoe's named server env-2026-06 (environment versions)
HOME_VOLUME = f"{VOLUMES}{USER}"
LIMITS = {"JUPYTERHUB_MEM_LIMIT": "256M", "JUPYTERHUB_PIDS_LIMIT": "64"}
LIMITS |= {"JUPYTERHUB_TMP_SIZE": "16M"}
MEMORY = 256 * 1024**2


@pytest.fixture(scope="module")
def image(images):
    """A name of the single-user image only this module uses: every container the filter
    lets through has it, so this module finds all of them (and only them) on a shared engine."""
    name = f"openbis-jupyterhub/singleuser:{PREFIX}"
    docker("tag", images["singleuser"], name)
    docker("tag", images["singleuser"], kept(name))
    yield name
    docker("rmi", name, kept(name), check=False)


def kept(image):
    """The earlier image the filter keeps beside ``image`` (JUPYTERHUB_SINGLEUSER_IMAGES)."""
    return f"{image}-old"


@pytest.fixture(scope="module")
def filter_socket(images, image, tmp_path_factory):
    """The real filter (our docker-proxy image), hardened as in compose.yaml, serving its
    socket in a directory of the test's."""
    directory = tmp_path_factory.mktemp("docker-proxy")
    docker("network", "create", NETWORK)
    env = filter_env(image)
    docker(
        "run", "-d", "--name", f"{PREFIX}-filter", "--network", "none", "--read-only",
        "--group-add", "999", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", f"{directory}:/run/docker-proxy",
        *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
        images["docker-proxy"],
    )  # fmt: skip
    path = directory / "docker.sock"
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() > deadline:
            logs = subprocess.run(["docker", "logs", f"{PREFIX}-filter"], capture_output=True)
            raise RuntimeError(f"the filter never listened: {logs.stderr.decode()[-3000:]}")
        time.sleep(0.1)
    try:
        yield str(path)
    finally:
        for container in ours(image):
            docker("rm", "-f", container["Id"], check=False)
        docker("rm", "-f", f"{PREFIX}-filter", check=False)
        docker("network", "rm", NETWORK, check=False)
        for volume in docker("volume", "ls", "-q").split():
            if volume.startswith(VOLUMES):
                docker("volume", "rm", "-f", volume, check=False)


def filter_env(image) -> dict:
    """The settings the filter and the spawner share (compose.yaml's x-user-containers)."""
    return {
        "JUPYTERHUB_SINGLEUSER_IMAGE": image,
        "JUPYTERHUB_SINGLEUSER_IMAGES": f"2026.06={kept(image)}",
        "JUPYTERHUB_NETWORK": NETWORK,
        "JUPYTERHUB_CONTAINER_PREFIX": PREFIX,
        "JUPYTERHUB_VOLUME_PREFIX": VOLUMES,
        **LIMITS,
    }


def send(path, method, target, body=b"", headers=None) -> tuple[int, bytes]:
    """One request, byte for byte as written here, on the filter's socket."""
    head = [f"{method} {target} HTTP/1.1", "Host: docker", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head += [f"Content-Length: {len(body)}"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(60)
        connection.connect(path)
        connection.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


@functools.cache
def api_version():
    return docker("version", "--format", "{{.Server.APIVersion}}").strip()


def spawner_body(image, name=NAME) -> dict:
    """What OpenBISDockerSpawner sends for JDoe's container (or the certificates' staging
    container, or JDoe's named server ``NAMED`` of the kept image) with this module's settings
    (tests/support/spawner_requests.py), running ``sleep`` instead of the server (no hub to
    talk to here)."""
    env = tuple({"OPENBIS_URL": "https://o.example.org", **filter_env(base(image))}.items())
    named = name.removesuffix(".certs") == NAMED
    sent = sent_by_spawner(env, "env-2026-06", image) if named else sent_by_spawner(env)
    params, body = sent["staging" if name.endswith(".certs") else "create"]
    assert params == {"name": name}
    body = json.loads(json.dumps(body))
    body["Cmd"] = ["sleep", "600"]
    return body


def base(image):
    """The current image, given it or the kept one (``kept``)."""
    return image.removesuffix("-old")


def ours(image) -> list[dict]:
    """Every container of this module's images, as the engine inspects it."""
    ids = docker("ps", "-aq", "--no-trunc").split()
    found = json.loads(docker("inspect", *ids)) if ids else []
    return [c for c in found if c["Config"]["Image"] in (image, kept(image))]


def assert_nothing_refused_got_through(image, socket_path):
    """What the engine says of every container the filter let through."""
    for container in ours(image):
        host, name = container["HostConfig"], container["Name"].lstrip("/")
        assert re.fullmatch(rf"{PREFIX}-{USER}(--env-2d2026-2d06)?(\.certs)?", name), name
        assert not host["Privileged"], name
        own = {f"{HOME_VOLUME}:/home/jovyan:rw", f"{HOME_VOLUME}.certs:/certs:ro"}
        assert set(host["Binds"]) <= own, (name, host["Binds"])
        volumes = {m["Name"] for m in container["Mounts"] if m["Type"] == "volume"}
        assert volumes <= {HOME_VOLUME, f"{HOME_VOLUME}.certs"}, (name, volumes)
        assert not [m for m in container["Mounts"] if m["Type"] == "bind"], name
        assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", container["Config"]["User"]), name
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], name
        assert host["SecurityOpt"] == ["no-new-privileges:true"], name
        assert (host["Memory"], host["MemorySwap"], host["PidsLimit"]) == (MEMORY, MEMORY, 64)
        assert host["ReadonlyRootfs"] and host["NetworkMode"] == NETWORK, name
        assert host["LogConfig"]["Type"] == "json-file", name
        assert host["MaskedPaths"] and host["ReadonlyPaths"], name
        assert not host["PortBindings"] and not host["PublishAllPorts"], name
        assert host["PidMode"] == "" and host["IpcMode"] in ("private", "shareable"), name
        assert not host["Devices"] and not host.get("Sysctls"), name
        if container["State"]["Running"]:
            inside = docker("exec", container["Id"], "sh", "-c",
                            "id -u; id -g; grep -E '^(CapEff|NoNewPrivs)' /proc/1/status; "
                            "ls /host 2>&1 | head -1")  # fmt: skip
            uid, gid, cap_eff, no_new_privs, host_dir = inside.splitlines()
            assert uid != "0" and gid != "0", inside
            assert cap_eff.split()[1] == "0000000000000000", inside
            assert no_new_privs.split()[1] == "1", inside
            assert "No such file" in host_dir, inside


def test_a_named_server_of_a_kept_image_gets_its_users_home_only(filter_socket, image):
    """An environment version: the same user's home, never another's; the kept image only."""
    old = kept(image)
    for binds in (
        [f"{VOLUMES}alice:/home/jovyan:rw"],
        [f"{HOME_VOLUME}:/home/jovyan:rw", f"{VOLUMES}alice--env-2d2026-2d06.certs:/certs:ro"],
    ):
        body = spawner_body(old, NAMED)
        body["HostConfig"]["Binds"] = binds
        status, answer = create(filter_socket, body, name=NAMED)
        assert status == 403, answer
    unlisted = {**spawner_body(old, NAMED), "Image": f"{image}-older"}
    status, answer = create(filter_socket, unlisted, name=NAMED)
    assert status == 403, answer
    assert_nothing_refused_got_through(image, filter_socket)
    status, answer = create(filter_socket, spawner_body(old, NAMED), name=NAMED)
    assert status == 201, answer
    (container,) = ours(image)
    assert (container["Name"], container["Config"]["Image"]) == (f"/{NAMED}", old)
    assert_nothing_refused_got_through(image, filter_socket)
    status, answer = send(filter_socket, "DELETE", f"/v{api_version()}/containers/{NAMED}")
    assert status == 204, answer


def create(path, body, name=NAME, content_type="application/json", version=None, query=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    target = f"/v{version or api_version()}/containers/create?{query or f'name={name}'}"
    return send(path, "POST", target, raw, {"Content-Type": content_type})


def host_changed(image, **changes):
    body = spawner_body(image)
    body["HostConfig"].update(changes)
    return body


def raw_with(image, head: str) -> bytes:
    """The spawner's body with ``head`` (JSON members) written before its own members."""
    good = json.dumps(spawner_body(image))
    return ("{" + head + ", " + good[1:]).encode()


def raw_host_with(image, tail: str) -> bytes:
    """The spawner's body with ``tail`` (JSON members) written after its HostConfig's own."""
    body = spawner_body(image)
    host = json.dumps(body.pop("HostConfig"))
    return (json.dumps(body)[:-1] + ', "HostConfig": ' + host[:-1] + ", " + tail + "}}").encode()


ROOT_BIND = '"Binds": ["/:/host"]'
BYPASSES = {
    # Go matches field names ignoring case ...
    "lower-case HostConfig": lambda i: raw_with(i, '"hostconfig": {"Privileged": true}'),
    "lower-case field": lambda i: raw_host_with(i, '"privileged": true'),
    "upper-case field": lambda i: raw_host_with(i, '"BINDS": ["/:/host"]'),
    # ... and with Unicode folding: ſ (U+017F) is s, K (U+212A) is k to it
    "folded s in Binds": lambda i: raw_host_with(i, '"Bind\\u017f": ["/:/host"]'),
    "folded s in SecurityOpt": lambda i: raw_host_with(
        i, '"\\u017fecurityOpt": ["seccomp=unconfined"]'
    ),
    "folded k in OomKillDisable": lambda i: raw_host_with(i, '"Oom\\u212aillDisable": true'),
    # Go merges repeated objects where Python keeps the last
    "repeated HostConfig": lambda i: raw_with(
        i, f'"HostConfig": {{"Privileged": true, {ROOT_BIND}}}'
    ),  # noqa: E501
    # fields the spawner never sends
    "privileged": lambda i: host_changed(i, Privileged=True),
    "host root": lambda i: host_changed(i, Binds=[f"{HOME_VOLUME}:/home/jovyan:rw", "/:/host"]),
    "mounts": lambda i: host_changed(
        i, Mounts=[{"Type": "bind", "Source": "/", "Target": "/host"}]
    ),  # noqa: E501
    "unmasked /proc": lambda i: host_changed(i, MaskedPaths=[], ReadonlyPaths=[]),
    "no logging": lambda i: host_changed(i, LogConfig={"Type": "none", "Config": {}}),
    "published port": lambda i: host_changed(i, PortBindings={"8888/tcp": [{"HostPort": "0"}]}),
    "host PID": lambda i: host_changed(i, PidMode="host"),
    "capability": lambda i: host_changed(i, CapAdd=["SYS_ADMIN"]),
    "no cap drop": lambda i: host_changed(i, CapDrop=[]),
    "no limits": lambda i: host_changed(i, Memory=0, MemorySwap=0, PidsLimit=0),
    "unconfined": lambda i: host_changed(i, SecurityOpt=["seccomp=unconfined"]),
    "root": lambda i: {**spawner_body(i), "User": "0:0"},
    "root by zeros": lambda i: {**spawner_body(i), "User": "00:100"},
    "no user": lambda i: {k: v for k, v in spawner_body(i).items() if k != "User"},
    "another user's home": lambda i: host_changed(i, Binds=[f"{VOLUMES}alice:/home/jovyan:rw"]),
    "another image": lambda i: {**spawner_body(i), "Image": i.rsplit(":", 1)[0] + ":other"},
}


@pytest.mark.parametrize("bypass", BYPASSES, ids=str)
def test_create_bypasses_get_nothing(filter_socket, image, bypass):
    status, answer = create(filter_socket, BYPASSES[bypass](image))
    assert_nothing_refused_got_through(image, filter_socket)
    assert status == 403, answer
    docker("rm", "-f", NAME, check=False)


@pytest.mark.parametrize(
    "query",
    [
        f"name=&name={NAME}",  # Go reads the first value: blank, and the engine picks a name
        f"name={NAME}&name=",
        f"name={NAME};name=evil",
        f"name={NAME}&platform=linux%2Farm64",
        "Name=evil",
    ],
)
def test_query_bypasses_get_nothing(filter_socket, image, query):
    status, answer = create(filter_socket, spawner_body(image), query=query)
    assert_nothing_refused_got_through(image, filter_socket)
    assert status == 403, answer


def test_form_bodies_and_bodies_where_none_belong_get_nothing(filter_socket, image):
    status, answer = create(
        filter_socket, b"name=evil", content_type="application/x-www-form-urlencoded"
    )
    assert status == 403, answer
    status, answer = create(filter_socket, spawner_body(image))
    assert status == 201, answer
    container = json.loads(answer)["Id"]
    start = f"/v{api_version()}/containers/{container}/start"
    host_config = json.dumps({"Privileged": True, "Binds": ["/:/host"]}).encode()
    json_type = {"Content-Type": "application/json"}
    status, answer = send(filter_socket, "POST", start, host_config, json_type)
    assert status == 403, answer
    # the API versions before 1.24 took a HostConfig with start: the engine still does
    for version in ("1.23", "1.12"):
        status, answer = send(
            filter_socket,
            "POST",
            f"/v{version}/containers/{container}/start",
            host_config,
            json_type,
        )
        assert status == 403, answer
    for target in (f"/containers/{container}/start", f"/v1.40/containers/{NAME}/start"):
        status, answer = send(filter_socket, "POST", target)
        assert status == 403, answer
    status, answer = send(filter_socket, "POST", start)
    assert status == 204, answer
    assert_nothing_refused_got_through(image, filter_socket)
    assert [c["State"]["Running"] for c in ours(image)] == [True]  # checked from inside
    status, answer = send(filter_socket, "DELETE", f"/v{api_version()}/containers/{NAME}?force=1")
    assert status == 204, answer


def tar_of(*members, form=tarfile.USTAR_FORMAT, pax=None) -> bytes:
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=form, pax_headers=pax) as archive:
        for info in members:
            archive.addfile(info, BytesIO(b"x" * info.size))
    return buffer.getvalue()


def member(name, size=1, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode = size, kind, linkname, 0o644
    return info


def test_archives_put_nothing_but_plain_files(filter_socket, image):
    """Into the certificates' staging container, as move_certs does; the volume then holds
    exactly the plain files that passed."""
    staging = f"{NAME}.certs"
    body = spawner_body(image, staging)
    volume = f"{HOME_VOLUME}.certs"
    status, answer = create(filter_socket, body, name=staging)
    assert status == 201, answer
    put = f"/v{api_version()}/containers/{staging}/archive?path=%2Fcerts"
    long_name = "a" * 120
    for archive in (
        tar_of(member("ok.crt"), member("link", 0, tarfile.SYMTYPE, "/etc/shadow")),
        tar_of(member("pax.crt"), form=tarfile.PAX_FORMAT, pax={"path": "sub/evil"}),
        tar_of(member(long_name), form=tarfile.GNU_FORMAT),
        tar_of(member("dir", 0, tarfile.DIRTYPE), member("dir/evil")),
    ):
        status, answer = send(filter_socket, "PUT", put, archive)
        assert status == 403, answer
    status, answer = send(filter_socket, "PUT", put, tar_of(member("user.key", 3)))
    assert status == 200, answer
    listing = docker(
        "run", "--rm", "--network", "none", "-v", f"{volume}:/v:ro", image,
        "find", "/v", "-mindepth", "1", "-printf", "%y %P %s\\n",
    )  # fmt: skip
    assert listing.split("\n")[:-1] == ["f user.key 3"]
    status, answer = send(filter_socket, "POST", f"/v{api_version()}/containers/{staging}/start")
    assert status == 403, answer  # never started
    assert_nothing_refused_got_through_staging(image)
    status, _ = send(filter_socket, "DELETE", f"/v{api_version()}/containers/{staging}")
    assert status == 204


def assert_nothing_refused_got_through_staging(image):
    (container,) = [c for c in ours(image) if c["Name"] == f"/{NAME}.certs"]
    host = container["HostConfig"]
    assert host["Binds"] == [f"{HOME_VOLUME}.certs:/certs:rw"]
    assert not container["State"]["Running"]
    assert host["CapDrop"] == ["ALL"] and container["Config"]["User"] == "1000:100"


def test_the_hub_learns_nothing_of_other_containers(filter_socket, image):
    """By name or id, another container is as if it did not exist, and never started."""
    other = f"{PREFIX}x-other"
    docker("create", "--name", other, image, "true")
    try:
        other_id = docker("inspect", "-f", "{{.Id}}", other).strip()
        for ref in (other, other_id, other_id[:12]):
            for method, verb in (("GET", "/json"), ("POST", "/start"), ("DELETE", "")):
                target = f"/v{api_version()}/containers/{ref}{verb}"
                status, answer = send(filter_socket, method, target)
                assert status == 404, (target, answer)
        assert docker("inspect", "-f", "{{.State.Status}}", other).strip() == "created"
    finally:
        docker("rm", "-f", other, check=False)
