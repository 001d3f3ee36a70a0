"""A hostile user's notebook: attacks as code cells, and the bombs, for tests/test_attacks.py and
benchmarks/attacks.py.

Each cell runs in the attacker's kernel, in the attacker's own container, and asserts its own
refusal: it ends by printing ``refused: <what stopped it>``, or fails with the evidence. The
targets are variables ``setup()`` defines in the kernel first: ``VICTIM`` (the other user's id),
``VICTIM_HOST`` (their container's name on the network), ``HUB`` (the hub container's name),
``PUBLIC_HOST`` (the host of the hub's public URL: the Host header browsers send the proxy),
``MAX_NOTEBOOK`` (the ELN endpoint's size limit), ``SECONDS`` (a bomb's duration), ``DISK_MB``
(the disk bomb's bound). Bombs are bounded: by the container's limits (processes, memory, /tmp)
and by their own loops (the disk), and clean up after themselves.
"""

import statistics
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from tests.support.compose_stack import ELN_ORIGIN, escape_user
from tests.support.eln import eln_post

# helpers every cell may use: the attacker's own credentials, plain HTTP(S) without trust
# of the server's certificate
PRELUDE = r"""
import json, os, socket, stat, subprocess, sys
import requests, urllib3
urllib3.disable_warnings()
OWN_TOKEN = os.environ["JUPYTERHUB_API_TOKEN"]   # the server's own JupyterHub token
HUB_API = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
ME = os.environ["JUPYTERHUB_USER"]
# the attacker's own server certificate and key (internal_ssl): the server must read them, so
# the user's code holds them too, and every request below presents them
KEY, CERT = os.environ.get("JUPYTERHUB_SSL_KEYFILE"), os.environ.get("JUPYTERHUB_SSL_CERTFILE")
CLIENT_CERT = (CERT, KEY) if KEY else None
def closed(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError:
        return True
    return False
def send(method, url, token=OWN_TOKEN, **kw):
    '''(status, text) or (None, error) when no HTTP answer came back at all.'''
    headers = {"Authorization": f"token {token}"} if token else {}
    if url.startswith(f"https://{HUB}:8000/"):
        headers["Host"] = PUBLIC_HOST  # the proxy, addressed as browsers address it
    try:
        r = requests.request(method, url, headers=headers, verify=False, timeout=20,
                             allow_redirects=False, cert=CLIENT_CERT, **kw)
    except requests.RequestException as e:
        return None, type(e).__name__
    return r.status_code, r.text
def openbis_token():
    from pathlib import Path
    (path,) = Path.home().joinpath(".pybis").glob("*.token")
    return path.read_text()
"""


@dataclass(frozen=True)
class Attack:
    id: str
    stopped_by: str  # for the report's table
    code: str


ATTACKS = [
    Attack(
        "docker-engine",
        "no socket in the container; the Docker API filter sits on a network only the hub joins",
        r"""
assert not any(os.path.exists(p) for p in ("/var/run/docker.sock", "/run/docker.sock"))
route = [l.split() for l in open("/proc/net/route").read().splitlines()[1:]]
gateway = next(socket.inet_ntoa(bytes.fromhex(r[2])[::-1]) for r in route if r[1] == "00000000")
for host in ("docker-proxy", gateway, HUB, "host.docker.internal"):
    for port in (2375, 2376):
        assert closed(host, port), (host, port)
print("refused: no Docker socket, no engine API on any address", gateway)
""",
    ),
    Attack(
        "privilege-escalation",
        "no capabilities (bounding set empty), no-new-privileges, no setuid/setgid files, no sudo",
        r"""
lines = open("/proc/self/status").read().splitlines()
status = dict(l.split(":\t", 1) for l in lines if ":\t" in l)
assert status["NoNewPrivs"].strip() == "1", status["NoNewPrivs"]
for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    assert int(status[name], 16) == 0, (name, status[name])
import shutil
assert shutil.which("sudo") is None
found = subprocess.run(["find", "/", "-xdev", "-perm", "/6000", "-type", "f"],
                       capture_output=True, text=True).stdout.split()
assert not found, found
for command in (["unshare", "-Ur", "id"], ["su", "-c", "id"], ["chroot", "/", "id"]):
    r = subprocess.run(command, input="\n", capture_output=True, text=True, timeout=20)
    assert r.returncode != 0, (command, r.stdout)
try:
    os.setuid(0)
    raise AssertionError("setuid(0) worked")
except PermissionError:
    pass
try:
    os.chown(os.path.expanduser("~"), 0, 0)
    raise AssertionError("chown to root worked")
except PermissionError:
    pass
print("refused: uid", os.getuid(), "with no capabilities, no setuid files, unshare/su/chroot fail")
""",
    ),
    Attack(
        "write-the-image",
        "read-only root filesystem (writable: the home volume and a size-limited /tmp)",
        r"""
for path in ("/etc/passwd", "/usr/local/bin/evil", "/opt/venv/bin/jupyter-evil", "/root/x"):
    try:
        with open(path, "a") as f:
            f.write("x")
        raise AssertionError(f"wrote {path}")
    except OSError as e:
        assert e.errno in (13, 30), (path, e)   # EACCES, EROFS
with open("/proc/mounts") as f:
    root = next(l.split() for l in f if l.split()[1] == "/")
assert "ro" in root[3].split(","), root
print("refused: / is mounted", root[3].split(",")[0])
""",
    ),
    Attack(
        "other-users-files-and-server",
        "own volume only; the other server needs a hub token with access to it",
        r"""
assert os.listdir("/home") == ["jovyan"]
mounts = [l.split()[1] for l in open("/proc/mounts")]
assert not [m for m in mounts if m.startswith(("/var/lib/docker", "/srv", "/host"))], mounts
answers = {}
for scheme in ("http", "https"):
    for path in ("api/contents", "api/kernels", "files/.pybis", "lab"):
        url = f"{scheme}://{VICTIM_HOST}:8888/user/{VICTIM}/{path}"
        status, text = send("GET", url)
        answers[scheme, path] = status
        assert status in (None, 302, 403), (url, status, text[:200])
        assert '"content"' not in (text or "")
# through the hub's proxy, as from any browser
for path in ("api/contents", "files/.pybis/openbis.token"):
    status, _ = send("GET", f"https://{HUB}:8000/user/{VICTIM}/{path}")
    answers["proxy", path] = status
    assert status in (302, 403, 404), (path, status)
print("refused:", sorted(set(answers.values()), key=str))
""",
    ),
    Attack(
        "other-users-server-by-name-and-ip",
        "internal_ssl: a server accepts TLS clients with a certificate of the hub's or the "
        "proxy's CA only; the attacker's own server certificate is of neither",
        r"""
import ssl
assert KEY, "internal_ssl is off: this server has no certificate"
key = os.stat(KEY)
assert (stat.S_IMODE(key.st_mode), key.st_uid) == (0o400, os.getuid()), oct(key.st_mode)
REQUEST = f"GET /user/{VICTIM}/api/status HTTP/1.1\r\nHost: x\r\n\r\n".encode()
def answer(host, tls, own_certificate=False):
    # the first bytes the victim's server sends back, or what ended the connection
    try:
        with socket.create_connection((host, 8888), timeout=10) as connection:
            if tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                if own_certificate:
                    context.load_cert_chain(CERT, KEY)
                connection = context.wrap_socket(connection)
            connection.sendall(REQUEST)
            return connection.recv(100)
    except (ssl.SSLError, ConnectionError) as e:
        return f"{type(e).__name__}: {e}"
answers = {}
for host in (VICTIM_HOST, socket.gethostbyname(VICTIM_HOST)):
    assert not closed(host, 8888), host  # the server is up and its port open ...
    for label, tls, own in (("plain", False, False), ("tls", True, False),
                            ("tls + own certificate", True, True)):
        got = answers[host, label] = answer(host, tls, own)
        # ... but nothing that reaches it gets an HTTP answer
        assert not (isinstance(got, bytes) and got.startswith(b"HTTP/")), (host, label, got)
for (host, label), got in answers.items():
    print(host, label, "->", str(got)[:100])
print("refused: no HTTP answer without the hub's or the proxy's certificate")
""",
    ),
    Attack(
        "forge-token-handover",
        "hand-over endpoints accept only the hub's openbis-handover service (its token checked "
        "with the hub)",
        r"""
forged = json.dumps({"token": "forged-session"})
notebook = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})
answers = {}
targets = [
    (f"{scheme}://{VICTIM_HOST}:8888/user/{VICTIM}/", scheme) for scheme in ("http", "https")
] + [
    (f"https://{HUB}:8000/user/{VICTIM}/", "proxy"),
    (f"https://{HUB}:8000/user/{ME}/", "own server"),
    (f"http://127.0.0.1:8888/user/{ME}/", "own server direct"),
]
for base, label in targets:
    for token in (OWN_TOKEN, None, "0" * 32):
        status, text = send("PUT", base + "openbis/token", token, data=forged)
        answers[label, "token", bool(token)] = status
        assert status in (None, 302, 401, 403), (base, status, text[:200])
        status, text = send("POST", base + "openbis/notebooks?folder=&filename=x.ipynb&test=False",
                            token, data=notebook)
        assert status in (None, 302, 401, 403), (base, status, text[:200])
assert openbis_token() != "forged-session"
print("refused:", sorted({str(v) for v in answers.values()}))
""",
    ),
    Attack(
        "hub-api-beyond-scopes",
        "JupyterHub scopes: the server's token is limited to its own user and server",
        r"""
calls = [
    ("GET", "/users"), ("GET", f"/users/{VICTIM}"), ("GET", f"/users/{VICTIM}/tokens"),
    ("POST", f"/users/{VICTIM}/server"), ("DELETE", f"/users/{VICTIM}/server"),
    ("POST", f"/users/{ME}/tokens"), ("POST", "/users"), ("PATCH", f"/users/{ME}"),
    ("GET", "/proxy"), ("POST", "/shutdown"), ("GET", "/services/openbis-handover"),
    ("POST", "/groups/x"), ("DELETE", f"/users/{VICTIM}"),
]
answers = {}
for method, path in calls:
    status, text = send(method, HUB_API + path, json={"admin": True} if method == "PATCH" else None)
    answers[method, path] = status
    assert status in (403, 404), (method, path, status, text[:200])
status, text = send("GET", f"{HUB_API}/users/{ME}")
assert status in (200, 403, 404) and "auth_state" not in text, text[:300]
print("refused:", sorted(set(answers.values())))
""",
    ),
    Attack(
        "proxy-api",
        "the proxy's API listens on the hub container's loopback only; the hub's /api/proxy "
        "needs the proxy scope, which a server's token lacks",
        r"""
answers = {}
for host in (HUB, socket.gethostbyname(HUB)):
    for scheme in ("http", "https"):
        status, text = send("GET", f"{scheme}://{host}:8001/api/routes")
        answers[host, scheme, 8001] = status
        assert status is None and closed(host, 8001), (host, scheme, status, text[:200])
for base in (HUB_API, f"https://{HUB}:8000/hub/api"):
    for method in ("GET", "POST", "PATCH"):
        status, text = send(method, f"{base}/proxy")
        answers[base, method] = status
        assert status == 403, (base, method, status, text[:200])
print("refused:", sorted({str(v) for v in answers.values()}))
""",
    ),
    Attack(
        "docker-proxy",
        "the Docker API filter is on no network (network_mode none); its socket is in a volume "
        "only the hub mounts",
        r"""
try:
    found = socket.getaddrinfo("docker-proxy", 2375)
    raise AssertionError(f"docker-proxy resolves: {found}")
except socket.gaierror:
    pass
for path in ("/run/docker-proxy", "/var/run/docker-proxy", "/run/docker.sock"):
    assert not os.path.exists(path), path
mounts = open("/proc/mounts").read()
assert "docker-proxy" not in mounts and "docker.sock" not in mounts, mounts
for port in (2375, 2376):
    assert closed(HUB, port), port
print("refused: docker-proxy resolves to nothing, no socket of it here, nothing on the hub's ports")
""",
    ),
    Attack(
        "hub-secrets",
        "no credential in any environment; hub state on a volume no user mounts; proxy API "
        "on the hub's loopback",
        r"""
token = openbis_token()
secrets = (b"OPENBIS_TOKEN", b"HANDOVER", b"CRYPT_KEY", b"COOKIE_SECRET", token.encode())
for proc in os.listdir("/proc"):
    if proc.isdigit():
        try:
            environ = open(f"/proc/{proc}/environ", "rb").read()
        except OSError:
            continue
        for secret in secrets:
            assert secret not in environ, (proc, secret[:12])
from pathlib import Path
(path,) = Path.home().joinpath(".pybis").glob("*.token")
assert stat.S_IMODE(path.stat().st_mode) == 0o600
assert not os.path.exists("/srv/jupyterhub")
for port in (8001, 5432, 3306):
    assert closed(HUB, port), port
print("refused: no credential in /proc/*/environ, token file 0600, hub state unreachable")
""",
    ),
    Attack(
        "path-tricks-and-oversized-bodies",
        "JupyterHub's routing and scopes, our endpoint's name checks and size limit (413)",
        r"""
token = openbis_token()
hub_base = HUB_API.rsplit("/api", 1)[0]           # http://hub:8081/hub
public = f"https://{HUB}:8000/hub"
answers = {}
def refused(method, url, *, statuses=(400, 401, 403, 404, 405, 413, 302), **kw):
    status, text = send(method, url, **kw)
    answers[method, url.split("?")[0][-50:]] = status
    assert status in statuses, (method, url[:120], status, (text or "")[:300])
    assert "root:x:0" not in (text or "")
    return status
for base in (hub_base, public):
    refused("GET", f"{base}/api/users/{ME}/../{VICTIM}")
    refused("GET", f"{base}/api/users/%2e%2e/{VICTIM}")
    refused("GET", f"{base}/api/users/{VICTIM}%2Fserver")
    refused("GET", f"{base}/api/users/{ME}%00/tokens")
    refused("GET", f"{base}/openbis-notebook/t/../../../../etc/passwd")
    refused("GET", f"{base}/openbis-notebook/t/%2e%2e%2f%2e%2e%2fetc%2fpasswd")
    for folder, name in (("../../x", "a.ipynb"), ("/etc", "a.ipynb"), ("a", "../b.ipynb"),
                         ("%2e%2e", "a.ipynb"), ("a", "b.ipynb%00.txt"), ("a\\..\\..", "b.ipynb")):
        query = f"token={token}&folder={folder}&filename={name}&test=True"
        refused("POST", f"{base}/openbis-notebook?{query}", token=None, data=b"TEST",
                statuses=(400,))
    big = b"{" + b" " * (MAX_NOTEBOOK + 1024) + b"}"
    refused("POST", f"{base}/openbis-notebook?token={token}&folder=a&filename=b.ipynb&test=False",
            token=None, data=big, statuses=(413,))
    refused("POST", f"{base}/login", token=None, data=b"username=" + b"a" * (30 << 20))
    refused("POST", f"{base}/api/users/{ME}/tokens", data=b"{" + b" " * (30 << 20) + b"}")
status, _ = send("PUT", f"http://127.0.0.1:8888/user/{ME}/openbis/token", data=b"x" * (30 << 20))
assert status in (None, 403, 413), status
print("refused:", sorted({str(v) for v in answers.values()}))
""",
    ),
]

BOMBS = {
    # forks until the process limit refuses, keeps retrying, then is killed with its children
    "fork": r"""
import signal, time
bomb = subprocess.Popen([sys.executable, "-c", '''
import os, sys, time
n, refused = 0, 0
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
        n += 1
    except OSError as e:
        refused += 1
        if refused == 1:
            print("fork refused after", n, "children, errno", e.errno, flush=True)
print("forks", n, "refused", refused, flush=True)
time.sleep(3600)
''', str(SECONDS)], start_new_session=True, stdout=subprocess.PIPE, text=True)
first = bomb.stdout.readline()
second = bomb.stdout.readline()
os.killpg(bomb.pid, signal.SIGKILL)
bomb.wait()
assert "errno 11" in first, first
print("refused:", first.strip(), "|", second.strip())
""",
    # allocates (and touches) 64 MB after 64 MB until the memory limit's OOM kill
    "memory": r"""
bomb = subprocess.run([sys.executable, "-c", '''
import time
blocks = []
for _ in range(200):
    blocks.append(b"x" * (64 << 20))
    time.sleep(0.05)
print("never killed", len(blocks) * 64, "MB")
'''], capture_output=True, text=True, timeout=300)
assert bomb.returncode == -9, (bomb.returncode, bomb.stdout)
print("refused: killed at the memory limit (SIGKILL)")
""",
    # /tmp until full (tmpfs size), / (read-only), then at most DISK_MB into the home
    "disk": r"""
import errno
def fill(path, limit_mb):
    written = 0
    try:
        with open(path, "wb") as f:
            while written < limit_mb:
                f.write(b"\0" * (16 << 20))
                f.flush()
                os.fsync(f.fileno())
                written += 16
    except OSError as e:
        return written, e.errno
    finally:
        if os.path.exists(path):
            os.remove(path)
    return written, None
tmp = fill("/tmp/bomb", 10_000)
assert tmp[1] == errno.ENOSPC, tmp
root = fill("/bomb", 16)
assert root[1] in (errno.EROFS, errno.EACCES), root
home = fill(os.path.expanduser("~/bomb"), DISK_MB)
print(f"refused: /tmp full after {tmp[0]} MB (ENOSPC), / read-only;",
      f"home took {home[0]} MB (bounded by the host disk: see docs/admin-guide.md, Disk), removed")
""",
}


def setup(**fields) -> str:
    """The cell that makes the attack's targets variables (``VICTIM="alice"``, ...)."""
    return "".join(f"{name.upper()} = {value!r}\n" for name, value in fields.items())


def measure(url: str, headers: dict, verify: str, stop: threading.Event, every: float = 0.2):
    """Response times (s) of GET ``url`` until ``stop`` is set; a failure counts as 30 s."""
    times = []
    while not stop.is_set():
        started = time.monotonic()
        try:
            ok = requests.get(url, headers=headers, verify=verify, timeout=30).ok
        except requests.RequestException:
            ok = False
        times.append(time.monotonic() - started if ok else 30.0)
        stop.wait(every)
    return times


def during(action, probes: dict) -> tuple[object, dict]:
    """Run ``action()`` while every probe (name -> (url, headers, verify)) is measured; return
    (the action's result, name -> response times)."""
    stop = threading.Event()
    results = {}

    def probe(name, url, headers, verify):
        results[name] = measure(url, headers, verify, stop)

    threads = [
        threading.Thread(target=probe, args=(name, *spec), daemon=True)
        for name, spec in probes.items()
    ]
    for thread in threads:
        thread.start()
    try:
        result = action()
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    return result, results


def median(times) -> float:
    return statistics.median(times) if times else float("inf")


# --- the suite on a compose stack (tests/test_attacks.py, benchmarks/attacks.py) ----------------
# Its stack has tighter limits than the defaults, so that bombs stay small on a shared test
# machine; its public URL has a host name, as in production.
ATTACKER, VICTIM = "JDoe", "alice"
LIMITS = {
    "JUPYTERHUB_MEM_LIMIT": "1G",
    "JUPYTERHUB_CPU_LIMIT": "1",
    "JUPYTERHUB_PIDS_LIMIT": "256",
    "JUPYTERHUB_TMP_SIZE": "64M",
    "OPENBIS_NOTEBOOK_MAX_BYTES": str(1 << 20),
    # a host name as in production (the tests reach the hub at 127.0.0.1): user code addresses
    # the proxy with it, and the proxy checks the internal certificates against it
    "JUPYTERHUB_PUBLIC_URL": "https://jupyter.test",
}
DISK_BOMB_MB = 256
BOMB_SECONDS = 8


def start_server(stack, user):
    """The user's server, started as the ELN does (its test POST)."""
    status, _, answer = eln_post(
        stack, stack.login(user), "x", "x.ipynb", "True", b"TEST", ELN_ORIGIN
    )
    assert status == 200, answer


def fields(stack):
    return {
        "victim": VICTIM,
        "victim_host": f"{stack.project}-{escape_user(VICTIM)}",
        "hub": "hub",
        "public_host": urlsplit(stack.settings["JUPYTERHUB_PUBLIC_URL"]).netloc,
        "max_notebook": int(LIMITS["OPENBIS_NOTEBOOK_MAX_BYTES"]),
        "seconds": BOMB_SECONDS,
        "disk_mb": DISK_BOMB_MB,
    }


def probes(stack, tokens):
    """What another user and the hub would notice: the hub's API root and alice's server."""
    verify = str(stack.ca_file)
    return {
        "hub": (f"{stack.url}/hub/api/", {}, verify),
        "alice's server": (
            f"{stack.url}/user/{VICTIM}/api/status",
            {"Authorization": f"token {tokens[VICTIM]}"},
            verify,
        ),
    }
