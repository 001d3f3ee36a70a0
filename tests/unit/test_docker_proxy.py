"""The Docker API filter's rules: what OpenBISDockerSpawner itself sends (its create_object and
move_certs through docker-py, recorded instead of sent: tests/support/spawner_requests.py)
passes, rebuilt from what was checked; any other wording, field, version or value is refused.
tests/test_docker_proxy.py sends the same classes of bypass through the real filter to the
real engine."""

import io
import json
import socket
import tarfile

import pytest

from docker_proxy import Refused, Rules, check, check_container_state, pinned_version
from docker_proxy.server import FilterHandler
from docker_proxy.server import Server as FilterServer
from tests.support.spawner_requests import sent_by_spawner

ENV = {"OPENBIS_URL": "https://o.example.org", "JUPYTERHUB_MEM_LIMIT": "2G"}
ENV_ITEMS = tuple(ENV.items())
RULES = Rules.from_env(ENV, "1.41")
API = "/v1.41"
NAME = "jupyter--4a-44oe"  # JDoe, escaped as DockerSpawner does
HOME_VOLUME = "jupyterhub-user--4a-44oe"
NAMED = f"{NAME}--env-2d2026-2d06"  # JDoe's named server env-2026-06 (environment versions)
SERVERS = {NAME: "", NAMED: "env-2026-06"}


def spawner_body(name=NAME, image=None, **host_changes) -> dict:
    """The create body the spawner sends for JDoe (or for the certificates' staging
    container), also for their named server ``NAMED`` of ``image``, with ``host_changes`` to
    its HostConfig."""
    server = SERVERS[name.removesuffix(".certs")]
    kind = "staging" if name.endswith(".certs") else "create"
    params, body = sent_by_spawner(ENV_ITEMS, server, image)[kind]
    assert params == {"name": name}
    body = json.loads(json.dumps(body))
    body["HostConfig"].update(host_changes)
    return body


def create(body, name=NAME, raw=None, content_type="application/json", rules=RULES):
    data = raw if raw is not None else json.dumps(body).encode()
    return check(rules, "POST", f"{API}/containers/create?name={name}", content_type, data)


def test_what_the_spawner_sends_passes_rebuilt():
    forward = create(spawner_body())
    assert forward.target == f"{API}/containers/create?name={NAME}"
    assert json.loads(forward.body) == spawner_body()
    assert forward.content_type == "application/json"
    staging = create(spawner_body(f"{NAME}.certs"), name=f"{NAME}.certs")
    assert json.loads(staging.body)["HostConfig"]["Binds"] == [f"{HOME_VOLUME}.certs:/certs:rw"]
    params, archive = sent_by_spawner(ENV_ITEMS)["archive"]
    put = check(
        RULES, "PUT", f"{API}/containers/{NAME}.certs/archive?path={params['path']}", "", archive
    )  # noqa: E501
    with tarfile.open(fileobj=io.BytesIO(put.body)) as rewritten:
        assert [(m.name, m.mode, m.uid) for m in rewritten] == [
            ("spawner_requests.py", 0o400, 1000),
            ("spawner_requests.py", 0o444, 1000),
        ]
    for method, path in [("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/version")]:
        assert check(RULES, method, path, "", b"").target == path
        assert check(RULES, method, API + path, "", b"").target == API + path
    image = f"{API}/images/openbis-jupyterhub/singleuser:latest/json"
    assert check(RULES, "GET", image, "", b"").target == image
    query = "fromImage=openbis-jupyterhub%2Fsingleuser&tag=latest"
    pull = check(RULES, "POST", f"{API}/images/create?{query}", "", b"")
    assert pull.params == {"fromImage": "openbis-jupyterhub/singleuser", "tag": "latest"}
    for method, path, action in [
        ("GET", "/json", "inspect"),
        ("POST", "/start", "start"),
        ("POST", "/stop", "stop"),
        ("DELETE", "", "remove"),
    ]:
        forward = check(RULES, method, f"{API}/containers/0123abcd{path}", "", b"")
        assert (forward.container, forward.action) == ("0123abcd", action)
        assert forward.path == API + "/containers/{id}" + path
    remove = check(RULES, "DELETE", f"{API}/containers/x?v=False&link=False&force=True", "", b"")
    assert remove.target == API + "/containers/{id}?v=0&link=0&force=1"


def test_fragments_are_dropped():
    assert "#" not in create(spawner_body(), name=f"{NAME}#x").target


# --- one request, one meaning ---------------------------------------------------------------
def test_keys_differing_only_in_case_or_folding_are_refused():
    body = spawner_body()
    for key in ("hostconfig", "HOSTCONFIG", "Hostconfig"):
        changed = {("HostConfig" if k == "HostConfig" else k): v for k, v in body.items()}
        changed[key] = {"Privileged": True}
        with pytest.raises(Refused, match="not spelled 'HostConfig'"):
            create(changed)
    for key, value in [("privileged", True), ("Bindſ", ["/:/host"]), ("binds", ["/:/host"])]:
        with pytest.raises(Refused):
            create(spawner_body(**{key: value}))
    kelvin = spawner_body()
    kelvin["HostConfig"]["\u212aernelMemory"] = 1  # KELVIN SIGN folds to k
    with pytest.raises(Refused):
        create(kelvin)


def test_repeated_keys_are_refused():
    """Go merges repeated objects: the first HostConfig's Privileged would survive."""
    good = json.dumps(spawner_body())
    evil = good[:-1] + ', "HostConfig": {"Privileged": true, "Binds": ["/:/host"]}}'
    with pytest.raises(Refused, match="twice"):
        create(None, raw=evil.encode())
    evil = '{"HostConfig": {"Privileged": true}, ' + good[1:]
    with pytest.raises(Refused, match="twice"):
        create(None, raw=evil.encode())


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"Image": NaN}',
        "\ufeff{}".encode(),
        json.dumps({"x": 1}).encode("utf-16"),
        b'{"Image": "\xff"}',
        b"{" + b" " * 300_000 + b"}",
    ],
)
def test_bodies_that_are_not_plain_json_objects_are_refused(raw):
    with pytest.raises(Refused):
        create(None, raw=raw)


def test_only_json_bodies_reach_create():
    raw = json.dumps(spawner_body()).encode()
    for content_type in ("", "text/plain", "application/x-www-form-urlencoded"):
        with pytest.raises(Refused):
            create(None, raw=raw, content_type=content_type)


@pytest.mark.parametrize(
    "target",
    [
        f"{API}/containers/create",  # no name: the engine makes one up
        f"{API}/containers/create?name=",
        f"{API}/containers/create?name",
        f"{API}/containers/create?name=&name={NAME}",  # Go reads the first, blank
        f"{API}/containers/create?name={NAME}&name=jupyter-x",
        f"{API}/containers/create?name={NAME};name=x",
        f"{API}/containers/create?name={NAME}&platform=linux",
        f"{API}/containers/create?name={NAME}%zz",
        f"{API}/containers/create?Name={NAME}",
        f"{API}/containers/create?name=openbis-jupyterhub-hub-1",
        f"{API}/containers/create?name=jupyter-JDoe",
        f"{API}/containers/create?name=jupyter--4a-44oe.other",
    ],
)
def test_queries_are_read_one_way(target):
    with pytest.raises(Refused):
        check(RULES, "POST", target, "application/json", json.dumps(spawner_body()).encode())


@pytest.mark.parametrize(
    "target",
    [
        "/v1.23/containers/create",  # old APIs: start takes a HostConfig
        "/v1.40/containers/x/start",
        "/v1.42/containers/x/start",
        "/containers/x/start",  # unversioned: the engine's newest
        "/v1.41.0/containers/x/start",
        "http://docker/v1.41/containers/x/start",
    ],
)
def test_one_api_version_is_forwarded(target):
    with pytest.raises(Refused):
        check(RULES, "POST", target, "", b"")


def test_bodies_are_refused_where_the_spawner_sends_none():
    host_config = json.dumps({"Privileged": True, "Binds": ["/:/host"]}).encode()
    for method, path in [
        ("POST", "/containers/x/start"),
        ("POST", "/containers/x/stop"),
        ("DELETE", "/containers/x"),
        ("GET", "/containers/x/json"),
        ("POST", "/images/create?fromImage=openbis-jupyterhub%2Fsingleuser"),
        ("GET", "/_ping"),
    ]:
        with pytest.raises(Refused, match="takes no body"):
            check(RULES, method, API + path, "application/json", host_config)
    with pytest.raises(Refused, match="form"):
        check(RULES, "POST", f"{API}/containers/x/stop", "application/x-www-form-urlencoded", b"")


def test_the_pinned_version_is_the_engines_own():
    assert pinned_version("1.41") == "1.41"
    assert pinned_version("1.52") == "1.52"
    with pytest.raises(SystemExit, match="20.10"):
        pinned_version("1.40")


# --- what a user container must have -----------------------------------------------------------
def without(key, host=True):
    body = spawner_body()
    (body["HostConfig"] if host else body).pop(key)
    return body


@pytest.mark.parametrize(
    "body",
    [
        without("CapDrop"),
        without("SecurityOpt"),
        without("PidsLimit"),
        without("Memory"),
        without("MemorySwap"),
        without("ReadonlyRootfs"),
        without("Tmpfs"),
        without("NetworkMode"),
        without("Binds"),
        without("User", host=False),
        without("HostConfig", host=False),
        without("Image", host=False),
    ],
    ids=lambda body: "missing",
)
def test_what_a_user_container_must_have_is_required(body):
    with pytest.raises(Refused, match="must be set"):
        create(body)


@pytest.mark.parametrize(
    "change",
    [
        {"Privileged": True},
        {"NetworkMode": "host"},
        {"NetworkMode": "bridge"},
        {"NetworkMode": "container:jupyter-alice"},
        {"PidMode": "host"},
        {"IpcMode": "host"},
        {"UTSMode": "host"},
        {"UsernsMode": "host"},
        {"CgroupnsMode": "host"},
        {"Binds": ["/:/host"]},
        {"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]},
        {"Binds": ["openbis-jupyterhub_hub-state:/srv"]},
        {"Binds": [f"{HOME_VOLUME}:/home/jovyan:rw", "jupyterhub-user-alice:/alice:rw"]},
        {"Binds": ["jupyterhub-user-alice:/home/jovyan:rw"]},
        {"Binds": [f"{HOME_VOLUME}:/home/jovyan:rw", "jupyterhub-user-alice.certs:/certs:ro"]},
        {"Binds": [f"{HOME_VOLUME}:/home/jovyan:rw", f"{HOME_VOLUME}.certs:/certs:rw"]},
        {"Binds": [f"{HOME_VOLUME}:/home/jovyan:rw,rshared"]},
        {"Binds": [f"{HOME_VOLUME}:/etc:rw"]},
        {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]},
        {"Mounts": [{"Type": "volume", "Source": "jupyterhub-user-alice", "Target": "/x"}]},
        {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]},
        {"DeviceRequests": [{"Count": -1}]},
        {"CapAdd": ["SYS_ADMIN"]},
        {"CapDrop": []},
        {"CapDrop": ["NET_RAW"]},
        {"SecurityOpt": ["seccomp=unconfined"]},
        {"SecurityOpt": ["no-new-privileges:true", "apparmor=unconfined"]},
        {"SecurityOpt": ["label=disable"]},
        {"SecurityOpt": []},
        {"Sysctls": {"net.ipv4.ip_forward": "1"}},
        {"VolumesFrom": ["openbis-jupyterhub-hub-1"]},
        {"PortBindings": {"8888/tcp": [{"HostPort": "80"}]}},
        {"PublishAllPorts": True},
        {"CgroupParent": "/"},
        {"Runtime": "runc-unsafe"},
        {"OomKillDisable": True},
        {"LogConfig": {"Type": "none"}},
        {"MaskedPaths": []},
        {"ReadonlyPaths": []},
        {"GroupAdd": ["0"]},
        {"Memory": 0},
        {"Memory": 64 * 1024**3},
        {"MemorySwap": -1},
        {"PidsLimit": -1},
        {"PidsLimit": 512.0},
        {"PidsLimit": True},
        {"ReadonlyRootfs": False},
        {"Tmpfs": {"/tmp": "rw,size=1G"}},
        {"Tmpfs": {"/tmp": 5}},
        {"Tmpfs": "/tmp"},
        {"Tmpfs": {"/tmp": "rw,nosuid,nodev,size=1G,mode=1777,exec"}},
        {"Tmpfs": {"/tmp": "rw,nosuid,nodev,size=100G,mode=1777"}},
        {"Tmpfs": {"/tmp": "rw,nosuid,nodev,size=1G,mode=1777", "/etc": "rw"}},
        {"CpuQuota": 100000},
        {"Links": ["openbis-jupyterhub-hub-1:hub"]},
    ],
)
def test_host_configurations_other_than_ours_are_refused(change):
    with pytest.raises(Refused):
        create(spawner_body(**change))


@pytest.mark.parametrize(
    "change",
    [
        {"Image": "debian:bookworm-slim"},
        {"Image": "openbis-jupyterhub/hub:latest"},
        {"Image": "openbis-jupyterhub/singleuser:latest\u0000"},
        {"User": "root"},
        {"User": "0"},
        {"User": "0:0"},
        {"User": "00:100"},
        {"User": "1000"},  # gid from the image's passwd, 0 where there is none
        {"User": "1000:0"},
        {"User": "jovyan:users"},
        {"User": " 1000:100"},
        {"User": 1000},
        {"Entrypoint": ["/bin/sh"]},
        {"WorkingDir": "/"},
        {"NetworkingConfig": {"EndpointsConfig": {"host": {}}}},
        {"NetworkDisabled": True},
        {"Volumes": {"/etc": {}}},
        {"ExposedPorts": {"8888/tcp": {"HostPort": "80"}}},
        {"Labels": {"x": "y"}},
        {"Healthcheck": {"Test": ["CMD", "true"]}},
        {"Env": "JUPYTERHUB_USER=JDoe"},
    ],
)
def test_containers_other_than_ours_are_refused(change):
    with pytest.raises(Refused):
        create({**spawner_body(), **change})


def test_the_configured_settings_are_the_ones_required():
    env = {
        **ENV,
        "JUPYTERHUB_CAP_ADD": "NET_BIND_SERVICE",
        "JUPYTERHUB_CPU_LIMIT": "1.5",
        "JUPYTERHUB_NO_NEW_PRIVILEGES": "false",
    }
    rules = Rules.from_env(env, "1.41")
    _, body = sent_by_spawner(tuple(env.items()))["create"]
    assert body["HostConfig"]["CpuQuota"] == 150_000  # the spawner's, as the filter requires
    create(body, rules=rules)
    for change in ({"CpuQuota": 200_000}, {"CapAdd": ["NET_ADMIN"]}, {"SecurityOpt": ["x"]}):
        with pytest.raises(Refused):
            create({**body, "HostConfig": {**body["HostConfig"], **change}}, rules=rules)
    with pytest.raises(Refused, match="CpuQuota must be set"):
        create(spawner_body(SecurityOpt=[], CapAdd=["NET_BIND_SERVICE"]), rules=rules)
    with pytest.raises(Refused, match="SecurityOpt"):
        create(spawner_body(SecurityOpt=[]))  # no-new-privileges where the settings ask for it


# --- objects by id: what the server learns from the engine -------------------------------------
def test_staging_containers_are_never_started_and_only_they_take_files():
    start = check(RULES, "POST", f"{API}/containers/abc/start", "", b"")
    with pytest.raises(Refused, match="never started"):
        check_container_state(start, {"Name": f"/{NAME}.certs", "State": {}})
    check_container_state(start, {"Name": f"/{NAME}", "State": {}})
    put = check(RULES, "PUT", f"{API}/containers/abc/archive?path=%2Fcerts", "", tar(("k", 0o400)))
    with pytest.raises(Refused, match="staging"):
        check_container_state(put, {"Name": f"/{NAME}", "State": {"Running": False}})
    with pytest.raises(Refused, match="not running"):
        check_container_state(put, {"Name": f"/{NAME}.certs", "State": {"Running": True}})
    check_container_state(put, {"Name": f"/{NAME}.certs", "State": {"Running": False}})


def test_names_of_our_containers():
    assert RULES.owns(f"/{NAME}")
    assert RULES.owns(f"/{NAME}.certs")
    assert RULES.owns(f"/{NAMED}")  # a named server (an environment version)
    assert RULES.owns(f"/{NAMED}.certs")
    assert not RULES.owns("/openbis-jupyterhub-hub-1")
    assert not RULES.owns("/jupyterx")
    assert not RULES.owns("/jupyter-JDoe")
    for name in (f"{NAME}--", f"{NAMED}--x", f"{NAME}---x", f"{NAME}-2", f"{NAME}.certs--x"):
        assert not RULES.owns(f"/{name}"), name


# --- environment versions: named servers of earlier images (JUPYTERHUB_SINGLEUSER_IMAGES) ------
OLD_IMAGE = "openbis-jupyterhub/singleuser:2026.06"
ENV_RULES = Rules.from_env({**ENV, "JUPYTERHUB_SINGLEUSER_IMAGES": f"2026.06={OLD_IMAGE}"}, "1.41")


def test_a_named_server_of_a_kept_image_passes():
    for image in ("openbis-jupyterhub/singleuser:latest", OLD_IMAGE):
        for name in (NAME, NAMED, f"{NAMED}.certs"):
            forward = create(spawner_body(name, image), name=name, rules=ENV_RULES)
            assert json.loads(forward.body) == spawner_body(name, image)
        assert check(ENV_RULES, "GET", f"{API}/images/{image}/json", "", b"")
    binds = json.loads(create(spawner_body(NAMED), name=NAMED).body)["HostConfig"]["Binds"]
    assert binds == [f"{HOME_VOLUME}:/home/jovyan:rw"]  # the user's one home
    staging = create(spawner_body(f"{NAMED}.certs"), name=f"{NAMED}.certs").body
    certs = f"{HOME_VOLUME}--env-2d2026-2d06.certs:/certs:rw"  # its own certificates
    assert json.loads(staging)["HostConfig"]["Binds"] == [certs]
    with pytest.raises(Refused, match="not one of the configured single-user images"):
        create(spawner_body(NAMED, OLD_IMAGE), name=NAMED)  # not kept by these rules


@pytest.mark.parametrize(
    "binds",
    [
        [
            "jupyterhub-user-alice:/home/jovyan:rw",
            f"{HOME_VOLUME}--env-2d2026-2d06.certs:/certs:ro",
        ],
        [f"{HOME_VOLUME}:/home/jovyan:rw", f"{HOME_VOLUME}.certs:/certs:ro"],  # the usual one's
        [
            f"{HOME_VOLUME}:/home/jovyan:rw",
            "jupyterhub-user-alice--env-2d2026-2d06.certs:/certs:ro",
        ],
        [f"{HOME_VOLUME}--env-2d2026-2d06:/home/jovyan:rw"],  # a home of its own is no user's home
    ],
)
def test_a_named_server_mounts_its_users_volumes_only(binds):
    with pytest.raises(Refused, match="not this user's volumes"):
        create(spawner_body(NAMED, OLD_IMAGE, Binds=binds), name=NAMED, rules=ENV_RULES)


# --- volumes (JUPYTERHUB_HOME_SIZE) ---------------------------------------------------------------
def volume_rules():
    return Rules(**{**RULES.__dict__, "home_size": "10G"})


def test_home_volumes_with_the_configured_size_only():
    rules = volume_rules()
    body = {"Name": HOME_VOLUME, "Driver": "local", "DriverOpts": {"size": "10G"}}
    forward = check(
        rules, "POST", f"{API}/volumes/create", "application/json", json.dumps(body).encode()
    )
    assert json.loads(forward.body) == body
    for change in (
        {"DriverOpts": {"size": "10G", "type": "none", "o": "bind", "device": "/"}},
        {"DriverOpts": {"type": "none", "o": "bind", "device": "/"}},
        {"DriverOpts": {"size": "100G"}},
        {"Driver": "nfs"},
        {"Name": "openbis-jupyterhub_hub-state"},
        {"name": HOME_VOLUME},
    ):
        with pytest.raises(Refused):
            data = json.dumps({**body, **change}).encode()
            check(rules, "POST", f"{API}/volumes/create", "application/json", data)
    with pytest.raises(Refused):  # without a home size, no volume is ever created by the hub
        data = json.dumps(body).encode()
        check(RULES, "POST", f"{API}/volumes/create", "application/json", data)
    with pytest.raises(Refused):
        check(rules, "GET", f"{API}/volumes/{HOME_VOLUME}", "", b"")
    check(rules, "DELETE", f"{API}/volumes/jupyterhub-user-.size-probe", "", b"")
    with pytest.raises(Refused):
        check(rules, "DELETE", f"{API}/volumes/{HOME_VOLUME}", "", b"")


# --- archives -----------------------------------------------------------------------------------
def tar(*members, kind=tarfile.REGTYPE, linkname="", form=tarfile.USTAR_FORMAT, pax=None):
    """An uncompressed tar of (name, mode) members, as docker-py's put_archive sends it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=form, pax_headers=pax) as archive:
        for name, mode in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, linkname, mode
            data = b"-----BEGIN CERTIFICATE-----" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put(query, body):
    return check(RULES, "PUT", f"{API}/containers/{NAME}.certs/archive?{query}", "", body)


def test_certificates_pass_as_a_rewritten_plain_tar():
    paths = {"keyfile": "user-JDoe.key", "cafile": "notebooks-ca_trust.crt"}
    forward = put("path=%2Fcerts", tar((paths["keyfile"], 0o400), (paths["cafile"], 0o444)))
    with tarfile.open(fileobj=io.BytesIO(forward.body)) as archive:
        assert [(m.name, m.mode, m.isfile()) for m in archive.getmembers()] == [
            ("user-JDoe.key", 0o400, True),
            ("notebooks-ca_trust.crt", 0o444, True),
        ]
    assert forward.content_type == "application/x-tar"


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("path=%2F", tar(("x.key", 0o400))),
        ("path=%2Fhome%2Fjovyan", tar(("x.key", 0o400))),
        ("path=%2Fcerts%2F..%2Fetc", tar(("x.key", 0o400))),
        ("", tar(("x.key", 0o400))),
        ("path=%2Fcerts&path=%2Fetc", tar(("x.key", 0o400))),
        ("path=%2Fcerts&noOverwriteDirNonDir=1", tar(("x.key", 0o400))),
        ("path=%2Fcerts", tar(("../etc/passwd", 0o644))),
        ("path=%2Fcerts", tar(("sub/x.key", 0o400))),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.SYMTYPE, linkname="/etc/shadow")),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.LNKTYPE, linkname="/etc/shadow")),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.DIRTYPE)),
        ("path=%2Fcerts", tar(("x", 0o755), kind=tarfile.CHRTYPE)),
        ("path=%2Fcerts", tar(("x", 0o4755))),
        ("path=%2Fcerts", tar(("x.key", 0o400), form=tarfile.PAX_FORMAT, pax={"path": "y"})),
        ("path=%2Fcerts", tar(("a" * 120, 0o400), form=tarfile.GNU_FORMAT)),  # GNU long name
        ("path=%2Fcerts", tar(("x.key", 0o400))[:700]),
        ("path=%2Fcerts", tar()),
        ("path=%2Fcerts", b"not a tar"),
        ("path=%2Fcerts", b"\x1f\x8b" + tar(("x.key", 0o400))),
        ("path=%2Fcerts", tar(*[(f"f{i}", 0o644) for i in range(600)])),
    ],
)
def test_files_go_into_the_certificates_volume_only(query, body):
    with pytest.raises(Refused):
        put(query, body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/containers/{NAME}/exec"),
        ("POST", "/exec/abc/start"),
        ("POST", "/build"),
        ("GET", "/containers/json"),
        ("GET", "/containers/abc/logs"),
        ("POST", "/containers/abc/attach"),
        ("POST", "/containers/abc/kill"),
        ("POST", "/containers/abc/archive"),
        ("HEAD", "/containers/abc/archive"),
        ("GET", "/containers/abc/archive"),
        ("POST", "/containers/abc/update"),
        ("POST", "/networks/create"),
        ("POST", "/networks/x/connect"),
        ("POST", "/volumes/create"),
        ("DELETE", f"/volumes/{HOME_VOLUME}"),
        ("GET", "/events"),
        ("POST", "/swarm/init"),
        ("POST", "/plugins/pull"),
        ("GET", "/secrets"),
        ("POST", "/images/load"),
        ("DELETE", "/images/openbis-jupyterhub/singleuser:latest"),
        ("POST", "/images/create?fromImage=debian&tag=bookworm-slim"),
        ("POST", "/images/create?fromImage=openbis-jupyterhub%2Fhub"),
        ("POST", "/images/create?fromSrc=-&repo=openbis-jupyterhub%2Fsingleuser"),
        ("POST", "/images/create?fromImage=openbis-jupyterhub%2Fsingleuser&fromSrc=-"),
        ("GET", "/images/debian:bookworm-slim/json"),
        ("POST", "/system/prune"),
        ("POST", "/containers/prune"),
        # path tricks
        ("GET", "/containers/../images/json"),
        ("GET", "/containers/%2e%2e/json"),
        ("POST", "//containers/create"),
        ("POST", "/containers/create/../../build"),
        ("GET", "/containers/a b/json"),
        ("GET", "/containers/a\x00/json"),
    ],
)
def test_everything_else_is_refused(method, path):
    with pytest.raises(Refused):
        check(RULES, method, API + path, "", b"")


def test_many_connections_at_once_wait_their_turn(tmp_path):
    """A hub starting many servers at once opens a connection per Docker call, as docker-py
    does (a timeout makes the socket non-blocking): none may fail with EAGAIN while the
    filter is busy (socketserver's default backlog is 5)."""
    path = str(tmp_path / "docker.sock")
    server = FilterServer(path, FilterHandler)  # listening, accepting nothing yet
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
