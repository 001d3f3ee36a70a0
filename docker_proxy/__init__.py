"""What the hub may ask of the Docker engine: the rules of the Docker API filter.

The hub runs DockerSpawner, and the raw Docker socket is root on the host. So the hub reaches
the engine only through this filter (``server.py``, its own container, the one holding the
socket): a request passes when ``check()`` finds nothing wrong, else it gets 403 and the
reason. What DockerSpawner needs, and only for our own objects:

- ``GET /_ping``, ``GET /version`` (the client's API version negotiation);
- ``GET /images/{image}/json`` and ``POST /images/create`` (pull) for the configured images;
- ``POST /containers/create`` for a user's container: a name with the configured prefix, a
  configured image, on the configured network, only named volumes with the configured prefix
  (no host paths), no privileges: not privileged, no host namespaces (network, PID, IPC, UTS,
  user, cgroup), no devices, no capabilities beyond the configured ones, no unconfined
  seccomp/AppArmor/SELinux, no sysctls, no published ports, not as root;
- ``GET …/json``, ``POST …/start|stop|kill``, ``DELETE`` of containers that carry the prefix
  (the server asks the engine for the name of a container given by id);
- ``PUT …/archive?path=/certs`` into such a container that is not running, with a tar of plain
  files only: how the hub's spawner (hub/docker.py, ``move_certs``) puts a server's internal
  TLS certificate into its certificates volume, through a container it never starts.

Everything else (exec, build, other containers, networks, swarm, plugins, events, system) is
refused, as is any path with ``..``, encoded characters or doubled slashes.
"""

import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from urllib.parse import parse_qs

MAX_BODY_BYTES = 256 * 1024  # a container's create request is a few KB, certificates too
CERTS_DIR = "/certs"  # the only place files may be put: the certificates volume's mount
_VERSION = re.compile(r"^/v1\.\d+(?=/)")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._:/@-]+$")
_NAMESPACES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode")
_MUST_BE_EMPTY = (
    "Devices",
    "DeviceRequests",
    "DeviceCgroupRules",
    "VolumesFrom",
    "Sysctls",
    "CgroupParent",
    "Runtime",
    "Links",
    "PortBindings",
)


class Refused(Exception):
    """A request the filter does not pass; the message says why."""


@dataclass(frozen=True)
class Rules:
    """What the stack allows, from the same settings the hub reads (compose.yaml)."""

    images: frozenset[str]
    container_prefix: str  # containers are named {prefix}-{escaped user id}
    volume_prefix: str
    network: str
    cap_add: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_env(cls, env) -> "Rules":
        def required(name):
            value = env.get(name, "").strip()
            if not value:
                raise SystemExit(f"docker-proxy: {name} must be set")
            return value

        caps = {c.strip().upper() for c in env.get("JUPYTERHUB_CAP_ADD", "").split(",")}
        return cls(
            images=frozenset({required("JUPYTERHUB_SINGLEUSER_IMAGE")}),
            container_prefix=required("JUPYTERHUB_CONTAINER_PREFIX") + "-",
            volume_prefix=required("JUPYTERHUB_VOLUME_PREFIX"),
            network=required("JUPYTERHUB_NETWORK"),
            cap_add=frozenset(caps - {""}),
        )

    def owns(self, name: str) -> bool:
        """True for the engine's name of one of our user containers (``/prefix-…``)."""
        return name.lstrip("/").startswith(self.container_prefix)


def route(method: str, path: str) -> tuple[str, str | None]:
    """(what the request does, the container it names or None), or Refused."""
    if not _SAFE_PATH.match(path) or "//" in path or ".." in path:
        raise Refused(f"path not allowed: {path!r}")
    path = _VERSION.sub("", path)
    if (method, path) in {("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/version")}:
        return "ping", None
    if method == "POST" and path == "/containers/create":
        return "create", None
    if method == "POST" and path == "/images/create":
        return "pull", None
    if method == "GET" and path.startswith("/images/") and path.endswith("/json"):
        return "image", path[len("/images/") : -len("/json")]
    match = re.fullmatch(r"/containers/([A-Za-z0-9_.-]+)(/json|/start|/stop|/kill|/archive)?", path)
    if match:
        action = {
            ("GET", "/json"): "inspect",
            ("POST", "/start"): "start",
            ("POST", "/stop"): "stop",
            ("POST", "/kill"): "kill",
            ("DELETE", None): "remove",
            ("PUT", "/archive"): "archive",
        }.get((method, match.group(2)))
        if action:
            return action, match.group(1)
    raise Refused(f"{method} {path} is not something the spawner needs")


def check_archive(query: str, body: bytes) -> None:
    """Refuse files for anywhere but the certificates volume, and anything but plain files."""
    target = parse_qs(query).get("path", [""])
    if target != [CERTS_DIR]:
        raise Refused(f"files may only be put into {CERTS_DIR}, not {target}")
    if len(body) > MAX_BODY_BYTES:
        raise Refused("request body too large")
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as archive:
            members = archive.getmembers()
    except tarfile.TarError as e:
        raise Refused("body is not an uncompressed tar") from e
    for member in members:
        if not member.isfile() or "/" in member.name or member.name in ("", ".", ".."):
            raise Refused(f"{member.name!r} is not a plain file name")
        if member.mode & 0o7000:
            raise Refused(f"{member.name!r} is setuid, setgid or sticky")


def check_image(rules: Rules, image: str) -> None:
    if image not in rules.images:
        raise Refused(f"image {image!r} is not the configured single-user image")


def check_pull(rules: Rules, query: str) -> None:
    params = parse_qs(query)
    image = params.get("fromImage", [""])[0]
    tag = params.get("tag", [""])[0]
    check_image(rules, f"{image}:{tag}" if tag and ":" not in image.rsplit("/", 1)[-1] else image)


def check_create(rules: Rules, query: str, body: bytes) -> None:
    """Refuse a container that is not one of our hardened user containers."""
    name = parse_qs(query).get("name", [""])[0]
    if not name.startswith(rules.container_prefix):
        raise Refused(f"container name {name!r} lacks the prefix {rules.container_prefix!r}")
    if len(body) > MAX_BODY_BYTES:
        raise Refused("request body too large")
    try:
        config = json.loads(body)
    except ValueError as e:
        raise Refused("body is not JSON") from e
    if not isinstance(config, dict):
        raise Refused("body is not a JSON object")
    check_image(rules, config.get("Image", ""))
    user = str(config.get("User") or "")
    if user.split(":")[0] in ("0", "root"):
        raise Refused("containers may not run as root")
    host = config.get("HostConfig") or {}
    if host.get("Privileged"):
        raise Refused("privileged containers are refused")
    if host.get("NetworkMode") != rules.network:
        raise Refused(f"network {host.get('NetworkMode')!r} is not {rules.network!r}")
    if config.get("NetworkingConfig"):
        raise Refused("extra network configuration is refused")
    for key in _NAMESPACES:
        value = str(host.get(key) or "")
        if value == "host" or value.startswith("container:"):
            raise Refused(f"{key}={value} shares a namespace")
    for key in _MUST_BE_EMPTY:
        if host.get(key):
            raise Refused(f"{key} is refused")
    extra_caps = set(host.get("CapAdd") or ()) - rules.cap_add
    if extra_caps:
        raise Refused(f"capabilities {sorted(extra_caps)} are not allowed")
    for option in host.get("SecurityOpt") or ():
        if not re.fullmatch(r"no-new-privileges(:true|=true)?", option):
            raise Refused(f"security option {option!r} is refused")
    if host.get("OomKillDisable"):
        raise Refused("OomKillDisable is refused")
    for bind in host.get("Binds") or ():
        source = bind.split(":", 1)[0]
        if not source.startswith(rules.volume_prefix) or "/" in source:
            raise Refused(f"bind {bind!r} is not a user volume")
    for mount in host.get("Mounts") or ():
        kind, source = mount.get("Type"), mount.get("Source") or ""
        if kind == "tmpfs" and not source:
            continue
        if kind != "volume" or not source.startswith(rules.volume_prefix) or "/" in source:
            raise Refused(f"mount {mount!r} is not a user volume")
        if (mount.get("VolumeOptions") or {}).get("DriverConfig"):
            raise Refused("volume driver options are refused")
