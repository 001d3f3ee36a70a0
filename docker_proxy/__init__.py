"""What the hub may ask of the Docker engine: the rules of the Docker API filter.

The hub runs DockerSpawner, and the raw Docker socket is root on the host. So the hub reaches
the engine only through this filter (``server.py``, its own container, the one holding the
socket). A request that a taken-over hub could word differently from the spawner must still mean
to the engine exactly what was checked, so ``check()`` reads each request once, strictly, and
returns a ``Forward``: the request *rebuilt from the checked values* (path, query, headers,
body), which is all the server sends on. The engine never sees a byte the filter did not read:

- **Path**: ``/v{API}/…`` with the one API version the filter pins (the engine's own, read at
  start; DockerSpawner's client negotiates the same through ``/version``); other versions are
  refused (old ones let ``start`` carry a HostConfig), as is any path with ``..``, encoded
  characters or doubled slashes. Fragments are dropped.
- **Query**: split on ``&`` only; each parameter known for that request, given once, never
  blank; forwarded re-encoded (Go's parser reads blanks, repeats and ``;`` differently).
- **Body**: only where the spawner sends one (container and volume create: JSON; certificates:
  a tar). JSON is parsed with repeated keys refused (Go merges them), every key must be one of
  the fields the spawner sends, spelled exactly (Go matches names ignoring case, with Unicode
  folding: ``ſ`` is ``s`` to it), values of the expected types; the engine gets the checked
  object re-encoded. A tar must be plain files only (no links, directories, devices, PAX or GNU
  extension headers) and is re-written as a plain ustar archive of the checked files.
- **Headers**: none of the hub's; the filter sets Content-Type (and passes X-Registry-Auth on
  a pull).

What passes, and only for our own objects:

- ``GET /_ping``, ``GET /version`` (the client's API version negotiation);
- ``GET /images/{image}/json`` and ``POST /images/create`` (pull) for the single-user images:
  the current one and the earlier ones kept (``JUPYTERHUB_SINGLEUSER_IMAGES``);
- ``POST /containers/create`` of a user's container ``{prefix}-{escaped user id}``, or of one
  of their named servers ``{prefix}-{escaped user id}--{escaped server name}`` (an environment
  version; ``--`` never occurs in an escaped id), which must be what ``hub/docker.py``
  configures, required rather than merely not forbidden: one of those images; a numeric
  non-zero ``uid:gid``; ``CapDrop: ALL`` (plus the configured ``JUPYTERHUB_CAP_ADD`` only);
  no-new-privileges (unless turned off); the configured process,
  memory (swap = memory) and CPU limits; the configured read-only root and ``/tmp`` (nosuid,
  nodev, its size); the stack's network; default logging, no published ports, no changes to
  masked or read-only paths, no devices, namespaces, sysctls or other runtimes (none of these
  fields is accepted at all); and that user's own volumes only: their home at ``/home/jovyan``
  (every server of the user shares it) and that server's certificates volume read-only at
  ``/certs`` (``{volume prefix}{user}.certs``, a named server's ``…{user}--{server}.certs``).
  The certificates' staging container ``{container}.certs`` (``move_certs``) is held to the
  same, with only that server's certificates volume, writable;
- ``GET …/json``, ``POST …/start|stop``, ``DELETE`` of our containers (the server asks the
  engine which container a name or id means, and forwards its full id); a staging container is
  never started;
- ``PUT …/archive?path=/certs`` into a staging container that is not running;
- with ``JUPYTERHUB_HOME_SIZE``: ``POST /volumes/create`` of a user's home with the local driver
  and exactly that ``size`` option, and ``DELETE`` of the size probe volume
  (``hub/docker.py``).

Everything else (exec, build, other containers, networks, swarm, plugins, events, system) is
refused.
"""

import io
import json
import re
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_plus, urlencode, urlsplit

from openbis_jupyterhub.hub.settings import read as read_settings

MAX_BODY_BYTES = 256 * 1024  # a container's create request is a few KB, certificates too
HOME = "/home/jovyan"  # where a user's home volume is mounted (hub/docker.py)
CERTS_DIR = "/certs"  # the certificates volume's mount, the only place files may be put
STAGING = ".certs"  # suffix of the certificates' staging container and volume
SIZE_PROBE = ".size-probe"  # suffix of the volume hub/docker.py makes to test JUPYTERHUB_HOME_SIZE
CPU_PERIOD = 100_000  # DockerSpawner's cpu_period: cpu_quota = cpu_limit * this
MIN_API_VERSION = (1, 41)  # Docker Engine 20.10
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._:/@-]*$")
# DockerSpawner's escaped ids (user and server names): lower case, digits, -xx escapes, so
# never "--": {user}--{server} splits one way only
_ESCAPED_ID = r"(?:[a-z0-9]|-[0-9a-f]{2})+"
_CONTAINER = re.compile(f"(?P<user>{_ESCAPED_ID})(?P<server>--{_ESCAPED_ID})?")
_UID_GID = re.compile(r"[1-9][0-9]{0,9}:[1-9][0-9]{0,9}")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Refused(Exception):
    """A request the filter does not pass; the message says why."""


@dataclass(frozen=True)
class Rules:
    """What the stack allows, from the same settings the hub reads (compose.yaml passes both
    containers the same variables; ``openbis_jupyterhub.hub.settings`` parses them)."""

    images: frozenset[str]  # the current single-user image and the earlier ones kept
    container_prefix: str  # containers are named {prefix}{escaped user id}[--{server}]
    volume_prefix: str
    network: str
    memory: int  # bytes
    pids_limit: int
    tmp_size: str
    api_version: str = "1.41"
    cap_add: frozenset[str] = field(default_factory=frozenset)
    cpu_quota: int | None = None
    read_only_root: bool = True
    no_new_privileges: bool = True
    home_size: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], api_version: str) -> "Rules":
        s = read_settings(env, complete=False)
        if not s["JUPYTERHUB_MEM_LIMIT"] or s["JUPYTERHUB_PIDS_LIMIT"] <= 0:
            raise SystemExit("docker-proxy: JUPYTERHUB_MEM_LIMIT and _PIDS_LIMIT must be set")
        cpu = s["JUPYTERHUB_CPU_LIMIT"]
        return cls(
            images=frozenset(
                [s["JUPYTERHUB_SINGLEUSER_IMAGE"], *s["JUPYTERHUB_SINGLEUSER_IMAGES"].values()]
            ),
            container_prefix=s["JUPYTERHUB_CONTAINER_PREFIX"] + "-",
            volume_prefix=s["JUPYTERHUB_VOLUME_PREFIX"],
            network=s["JUPYTERHUB_NETWORK"],
            memory=s["JUPYTERHUB_MEM_LIMIT"],
            pids_limit=s["JUPYTERHUB_PIDS_LIMIT"],
            tmp_size=s["JUPYTERHUB_TMP_SIZE"],
            api_version=api_version,
            cap_add=frozenset(s["JUPYTERHUB_CAP_ADD"]),
            cpu_quota=None if cpu is None else int(cpu * CPU_PERIOD),
            read_only_root=s["JUPYTERHUB_READ_ONLY_ROOT"],
            no_new_privileges=s["JUPYTERHUB_NO_NEW_PRIVILEGES"],
            home_size=s["JUPYTERHUB_HOME_SIZE"],
        )

    def owns(self, name: str) -> bool:
        """True for the engine's name of one of our containers (``/prefix…``)."""
        return self.split(name.removeprefix("/")) is not None

    def split(self, name: str) -> tuple[str, str, bool] | None:
        """``{prefix}{user}[--{server}][.certs]`` -> (user, "--{server}" or "", staging)."""
        if not name.startswith(self.container_prefix):
            return None
        rest = name[len(self.container_prefix) :]
        staging = rest.endswith(STAGING)
        match = _CONTAINER.fullmatch(rest.removesuffix(STAGING))
        return (match["user"], match["server"] or "", staging) if match else None


def pinned_version(engine_version: str) -> str:
    """The API version to pin, from the engine's ``/version`` ApiVersion."""
    major, minor = (int(part) for part in engine_version.split("."))
    if (major, minor) < MIN_API_VERSION:
        raise SystemExit(
            f"docker-proxy: Docker Engine API {engine_version} is older than 1.41 (20.10)"
        )
    return f"{major}.{minor}"


@dataclass
class Forward:
    """The request the engine gets: rebuilt from checked values only."""

    method: str
    path: str  # with "{id}" where the server puts the full id of ``container``
    params: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""
    container: str = ""  # a container name or id the server must find to be ours
    action: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.path + ("?" + urlencode(self.params) if self.params else "")


# --- the request line and query ---------------------------------------------------------------
def parse_query(query: str, allowed: Mapping[str, Callable[[str], str]]) -> dict[str, str]:
    """Each parameter once, known, non-blank, checked by its function (which returns the value
    to forward)."""
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&"):
        key, eq, raw = part.partition("=")
        if ";" in part or not eq or re.search(r"%(?![0-9A-Fa-f]{2})", part):
            raise Refused(f"malformed query parameter {part!r}")
        key, value = unquote_plus(key), unquote_plus(raw)
        if key not in allowed:
            raise Refused(f"query parameter {key!r} is not one the spawner sends here")
        if key in params:
            raise Refused(f"query parameter {key!r} given twice")
        if not value:
            raise Refused(f"query parameter {key!r} is blank")
        params[key] = allowed[key](value)
    return params


def boolean_param(value: str) -> str:
    if value.lower() not in ("true", "false", "1", "0"):
        raise Refused(f"{value!r} is not a boolean")
    return "1" if value.lower() in ("true", "1") else "0"


def digits_param(value: str) -> str:
    if not value.isdecimal() or not value.isascii():
        raise Refused(f"{value!r} is not a number")
    return str(int(value))


def check(rules: Rules, method: str, target: str, content_type: str, body: bytes) -> Forward:
    """The request to forward for the hub's request, or Refused."""
    url = urlsplit(target)
    if not target.startswith("/") or not _SAFE_PATH.match(url.path):
        raise Refused(f"path not allowed: {target!r}")
    if "//" in url.path or ".." in url.path:
        raise Refused(f"path not allowed: {url.path!r}")
    if content_type.split(";")[0].strip().lower() in _FORM_TYPES:
        raise Refused("form-encoded bodies are refused")
    if len(body) > MAX_BODY_BYTES:
        raise Refused("request body too large")
    if url.path in ("/_ping", "/version") and method in ("GET", "HEAD"):
        return _bodyless(Forward(method, url.path), url.query, body, {})
    prefix = f"/v{rules.api_version}/"
    if not url.path.startswith(prefix):
        raise Refused(f"only API version {rules.api_version} is forwarded: {url.path!r}")
    path = "/" + url.path[len(prefix) :]
    api = prefix[:-1]

    if (method, path) in (("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/version")):
        return _bodyless(Forward(method, api + path), url.query, body, {})
    if (method, path) == ("POST", "/containers/create"):
        params = parse_query(url.query, {"name": lambda v: v})
        name = params.get("name", "")
        if not rules.owns(name):
            raise Refused(f"container name {name!r} is not {rules.container_prefix}<user>")
        config = check_create(rules, name, parse_json(content_type, body))
        return Forward(method, api + path, params, encode(config), "application/json")
    if (method, path) == ("POST", "/images/create"):
        forward = Forward(method, api + path)
        _bodyless(forward, url.query, body, {"fromImage": lambda v: v, "tag": lambda v: v})
        image, tag = forward.params.get("fromImage", ""), forward.params.get("tag", "")
        check_image(rules, f"{image}:{tag}" if tag else image)
        return forward
    if method == "GET" and path.startswith("/images/") and path.endswith("/json"):
        check_image(rules, path[len("/images/") : -len("/json")])
        return _bodyless(Forward(method, api + path), url.query, body, {})
    if (method, path) == ("POST", "/volumes/create") and rules.home_size:
        volume = check_volume(rules, parse_json(content_type, body))
        return Forward(method, api + path, {}, encode(volume), "application/json")
    if (
        method == "DELETE"
        and path == f"/volumes/{rules.volume_prefix}{SIZE_PROBE}"
        and rules.home_size
    ):
        return _bodyless(Forward(method, api + path), url.query, body, {})
    match = re.fullmatch(r"/containers/([A-Za-z0-9_.-]+)(/json|/start|/stop|/archive)?", path)
    if match:
        ref, verb = match.groups()
        action, allowed = {
            ("GET", "/json"): ("inspect", {}),
            ("POST", "/start"): ("start", {}),
            ("POST", "/stop"): ("stop", {"t": digits_param}),
            ("DELETE", None): ("remove", dict.fromkeys(("v", "link", "force"), boolean_param)),
            ("PUT", "/archive"): ("archive", {"path": lambda v: v}),
        }.get((method, verb), (None, None))
        if action == "archive":
            params = parse_query(url.query, allowed)
            if params.get("path") != CERTS_DIR:
                raise Refused(f"files may only be put into {CERTS_DIR}, not {params.get('path')}")
            archive = check_archive(body)
            forward = Forward(method, api + "/containers/{id}/archive", params, archive)
            forward.content_type = "application/x-tar"
        elif action:
            forward = Forward(method, api + "/containers/{id}" + (verb or ""))
            _bodyless(forward, url.query, body, allowed)
        if action:
            forward.container, forward.action = ref, action
            return forward
    raise Refused(f"{method} {path} is not something the spawner needs")


def _bodyless(forward: Forward, query: str, body: bytes, allowed) -> Forward:
    if body:
        raise Refused(f"{forward.method} {forward.path} takes no body")
    forward.params = parse_query(query, allowed)
    return forward


def check_container_state(forward: Forward, inspect: dict) -> None:
    """What the server learned of the container named in ``forward``, checked."""
    name = inspect.get("Name", "").removeprefix("/")
    if forward.action == "start" and name.endswith(STAGING):
        raise Refused("the certificates' staging container is never started")
    if forward.action == "archive":
        if not name.endswith(STAGING):
            raise Refused("files may only be put into a certificates' staging container")
        if (inspect.get("State") or {}).get("Running"):
            raise Refused("files may only be put into a container that is not running")


# --- JSON bodies -------------------------------------------------------------------------------
def _unique_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise Refused(f"key {key!r} appears twice")
        obj[key] = value
    return obj


def _no_constant(name):
    raise Refused(f"{name} is not JSON")


def parse_json(content_type: str, body: bytes) -> dict:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Refused("the body must be application/json")
    try:
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError) as e:
        raise Refused(f"body is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise Refused("body is not a JSON object")
    return value


def encode(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def fields(obj: object, where: str, allowed: Mapping, required=()) -> dict:
    """``obj`` as a dict whose keys are all in ``allowed``, exactly spelled; each value passed
    to its check. Keys differing from a known one in case or folding get a message of their own."""
    if not isinstance(obj, dict):
        raise Refused(f"{where} is not an object")
    known = {key.casefold(): key for key in allowed}
    for key, value in obj.items():
        if key not in allowed:
            if key.casefold() in known:
                raise Refused(f"{where}: {key!r} is not spelled {known[key.casefold()]!r}")
            raise Refused(f"{where}: field {key!r} is not one the spawner sends")
        allowed[key](value, f"{where}.{key}")
    missing = [key for key in required if key not in obj]
    if missing:
        raise Refused(f"{where}: {', '.join(missing)} must be set")
    return obj


def _is(kind):
    def check_type(value, where):
        # bool is an int to Python, not to the engine
        if type(value) is not kind:
            raise Refused(f"{where} must be a {kind.__name__}")

    return check_type


def _equal(expected):
    def check_value(value, where):
        if type(value) is not type(expected) or value != expected:
            raise Refused(f"{where} must be {expected!r}, not {value!r}")

    return check_value


def _list_of(kind):
    def check_list(value, where):
        if not isinstance(value, list) or any(type(item) is not kind for item in value):
            raise Refused(f"{where} must be a list of {kind.__name__}")

    return check_list


def _empty(value, where):
    if value not in ([], {}, None):
        raise Refused(f"{where} must be empty")


def _false(value, where):
    _equal(False)(value, where)


def check_image(rules: Rules, image: str) -> None:
    if image not in rules.images:
        raise Refused(f"image {image!r} is not one of the configured single-user images")


def check_create(rules: Rules, name: str, config: dict) -> dict:
    """A user's container (or its certificates' staging container), as hub/docker.py makes it:
    the user's home, the certificates of this server (its named server's own)."""
    user, server, staging = rules.split(name)
    certs = f"{rules.volume_prefix}{user}{server}{STAGING}:{CERTS_DIR}"
    home = f"{rules.volume_prefix}{user}:{HOME}:rw"
    binds = {f"{certs}:rw"} if staging else {home, f"{certs}:ro"}
    required_binds = binds if staging else {home}

    def check_binds(value, where):
        _list_of(str)(value, where)
        if len(set(value)) != len(value) or not required_binds <= set(value) <= binds:
            raise Refused(f"{where}: {value} are not this user's volumes ({sorted(binds)})")

    def check_user(value, where):
        if type(value) is not str or not _UID_GID.fullmatch(value):
            raise Refused(f"{where} must be a numeric uid:gid, neither 0, not {value!r}")

    def check_tmpfs(value, where):
        needed = {"rw", "nosuid", "nodev", f"size={rules.tmp_size}"}
        allowed = needed | {"mode=1777"}
        only_tmp = isinstance(value, dict) and list(value) == ["/tmp"]  # noqa: S108
        options = value["/tmp"] if only_tmp else None  # noqa: S108
        if type(options) is not str or not needed <= set(options.split(",")) <= allowed:
            raise Refused(f"{where} must be /tmp with {sorted(needed)}")

    def check_caps(value, where):
        _list_of(str)(value, where)
        extra = set(value) - rules.cap_add
        if extra:
            raise Refused(f"{where}: capabilities {sorted(extra)} are not allowed")

    def check_mount_points(value, where):
        targets = {bind.split(":")[1] for bind in binds}
        if not isinstance(value, dict) or not set(value) <= targets:
            raise Refused(f"{where} may only declare {sorted(targets)}")
        for point in value.values():
            _empty(point, where)

    def check_ports(value, where):
        if not isinstance(value, dict) or not all(re.fullmatch(r"\d+/tcp", p) for p in value):
            raise Refused(f"{where} must be container ports")
        for point in value.values():
            _empty(point, where)

    security = ["no-new-privileges:true"] if rules.no_new_privileges else []
    host = {
        "NetworkMode": _equal(rules.network),
        "Binds": check_binds,
        "CapDrop": _equal(["ALL"]),
        "CapAdd": check_caps,
        "SecurityOpt": _equal(security),
        "PidsLimit": _equal(rules.pids_limit),
        "Memory": _equal(rules.memory),
        "MemorySwap": _equal(rules.memory),
        "ReadonlyRootfs": _equal(rules.read_only_root),
        "Tmpfs": check_tmpfs,
        "AutoRemove": _is(bool),
        "Links": _empty,
        "Mounts": _empty,
        # DockerSpawner sends its period always, the quota only for a CPU limit
        "CpuPeriod": _equal(CPU_PERIOD),
        "CpuQuota": _equal(rules.cpu_quota or 0),
    }
    required_host = ["NetworkMode", "Binds", "CapDrop", "PidsLimit", "Memory", "MemorySwap"]
    required_host += ["ReadonlyRootfs", "Tmpfs"] + ["SecurityOpt"] * bool(security)
    required_host += ["CpuPeriod", "CpuQuota"] if rules.cpu_quota else []
    top = {
        "Image": lambda value, where: check_image(rules, value),
        "User": check_user,
        "HostConfig": lambda value, where: fields(value, where, host, required_host),
        "Env": _list_of(str),
        "Cmd": _list_of(str),
        "ExposedPorts": check_ports,
        "Volumes": check_mount_points,
        "NetworkDisabled": _false,
        **dict.fromkeys(
            ("Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr"),
            _is(bool),
        ),
    }
    return fields(config, "body", top, ["Image", "User", "HostConfig"])


def check_volume(rules: Rules, volume: dict) -> dict:
    """A user's home (or the size probe) with the local driver and the configured size."""

    def check_name(value, where):
        pattern = re.escape(rules.volume_prefix) + f"({_ESCAPED_ID}|{re.escape(SIZE_PROBE)})"
        if type(value) is not str or not re.fullmatch(pattern, value):
            raise Refused(f"{where} {value!r} is not a user's home volume")

    def check_labels(value, where):
        if not isinstance(value, dict) or any(type(v) is not str for v in value.values()):
            raise Refused(f"{where} must map names to strings")

    allowed = {
        "Name": check_name,
        "Driver": _equal("local"),
        "DriverOpts": _equal({"size": rules.home_size}),
        "Labels": check_labels,
    }
    return fields(volume, "body", allowed, ["Name", "Driver", "DriverOpts"])


# --- archives ----------------------------------------------------------------------------------
def check_archive(body: bytes) -> bytes:
    """The certificates as a plain ustar archive of the checked files: read header by header
    (no PAX or GNU extension headers, nothing but regular files with plain names and modes)."""
    files, offset = [], 0
    while True:
        block = body[offset : offset + tarfile.BLOCKSIZE]
        if len(block) < tarfile.BLOCKSIZE:
            raise Refused("body is not an uncompressed tar")
        if block == tarfile.NUL * tarfile.BLOCKSIZE:
            break
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
        except (tarfile.HeaderError, UnicodeDecodeError) as e:
            raise Refused("body is not an uncompressed tar") from e
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise Refused(f"{info.name!r} is not a plain file (type {info.type!r})")
        if "/" in info.name or info.name in (".", "..") or not info.name.isprintable():
            raise Refused(f"{info.name!r} is not a plain file name")
        if info.mode & 0o7000:
            raise Refused(f"{info.name!r} is setuid, setgid or sticky")
        start = offset + tarfile.BLOCKSIZE
        data = body[start : start + info.size]
        if len(data) != info.size:
            raise Refused("body is not an uncompressed tar")
        files.append((info, data))
        offset = start + -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    if not files:
        raise Refused("the archive holds no files")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for info, data in files:
            clean = tarfile.TarInfo(info.name)
            clean.size, clean.mode, clean.mtime = info.size, info.mode, info.mtime
            clean.uid, clean.gid = info.uid, info.gid
            archive.addfile(clean, io.BytesIO(data))
    return buffer.getvalue()
