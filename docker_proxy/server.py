"""The Docker API filter as a server: a socket of its own in front of the engine's socket.

Run as ``python3 -m docker_proxy.server`` (images/docker-proxy). It listens on the unix socket
``DOCKER_PROXY_SOCKET`` (in a volume only the hub shares, mode 0660, group ``DOCKER_PROXY_GID``:
the hub's user group), so nothing on any network reaches it. Every request is read once by
``docker_proxy.check`` and, when it passes, the request *it* returns (rebuilt from what was
checked) is sent to the engine; the answer goes back whole (the spawner's requests have short
answers; streaming ones are refused anyway).
"""

import http.client
import json
import os
import re
import socket
import sys
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingUnixStreamServer
from urllib.parse import quote

from . import MAX_BODY_BYTES, Forward, Refused, Rules, check, check_container_state, pinned_version

ENGINE_SOCKET = "/var/run/docker.sock"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class EngineConnection(http.client.HTTPConnection):
    """HTTP to the engine's unix socket."""

    def __init__(self, path: str, timeout: float = 120):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def engine(forward: Forward, headers=None):
    """(status, headers, body) of one request to the engine."""
    connection = EngineConnection(ENGINE_SOCKET)
    try:
        body = forward.body or None
        connection.request(forward.method, forward.target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


class Server(ThreadingUnixStreamServer):
    # socketserver's default backlog is 5: a hub starting many servers at once (each Docker
    # call a connection) got EAGAIN from connect(); the engine's own socket allows far more
    request_queue_size = 128


class FilterHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    rules: Rules  # set by main()

    def _handle(self):
        try:
            body = self._read_body()
            forward = check(
                self.rules, self.command, self.path, self.headers.get("Content-Type", ""), body
            )
            if forward.container:
                inspect = self._ours(forward.container)
                if inspect is None:
                    # as if it did not exist: the hub learns nothing of other containers
                    message = f"No such container: {forward.container}"
                    return self._answer(404, {"message": message})
                check_container_state(forward, inspect)
                forward.path = forward.path.replace("{id}", inspect["Id"])
        except Refused as e:
            self.log_message("refused %s %s: %s", self.command, self.path.split("?")[0], e)
            return self._answer(403, {"message": f"refused by the Docker API filter: {e}"})
        status, answer_headers, answer = engine(forward, self._headers(forward))
        self.send_response(status)
        for key, value in answer_headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    def _headers(self, forward: Forward) -> dict:
        """Only headers the filter sets: the body's type, and registry credentials on a pull."""
        headers = {"Content-Type": forward.content_type} if forward.content_type else {}
        auth = self.headers.get("X-Registry-Auth")
        if auth and forward.path.endswith("/images/create"):
            headers["X-Registry-Auth"] = auth
        return headers

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise Refused("chunked request bodies are refused")
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            raise Refused("bad Content-Length")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread
            raise Refused("request body too large")
        return self.rfile.read(int(length))

    def _ours(self, container: str) -> dict | None:
        """The engine's inspect of the container when it is one of ours, else None."""
        path = f"/v{self.rules.api_version}/containers/{quote(container, safe='')}/json"
        status, _, answer = engine(Forward("GET", path))
        if status != 200:
            return None
        inspect = json.loads(answer)
        if not self.rules.owns(inspect.get("Name", "")):
            return None
        if not re.fullmatch(r"[0-9a-f]{64}", inspect.get("Id", "")):
            return None
        return inspect

    def address_string(self):
        return "hub"  # a unix socket's peer has no address

    def _answer(self, status, content):
        data = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


def main():
    # the API version to pin: the engine's own (DockerSpawner's client negotiates the same)
    status, _, answer = engine(Forward("GET", "/version"))
    if status != 200:
        raise SystemExit(f"docker-proxy: the engine answered {status} to /version")
    FilterHandler.rules = Rules.from_env(
        os.environ, pinned_version(json.loads(answer)["ApiVersion"])
    )
    path = os.environ.get("DOCKER_PROXY_SOCKET", "/run/docker-proxy/docker.sock")
    if os.path.exists(path):
        os.remove(path)  # left by the last run
    server = Server(path, FilterHandler)
    server.daemon_threads = True
    # the hub's group may connect; root owns it and may give it to a group it is a member of
    # (compose.yaml: group_add), so no capability is needed
    os.chown(path, -1, int(os.environ.get("DOCKER_PROXY_GID", "999")))
    os.chmod(path, 0o660)
    api = FilterHandler.rules.api_version
    print(f"docker-proxy: filtering Docker API {api} on {path}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
