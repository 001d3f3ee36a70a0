"""The Docker API filter as a server: a socket of its own in front of the engine's socket.

Run as ``python3 -m docker_proxy.server`` (images/docker-proxy). It listens on the unix socket
``DOCKER_PROXY_SOCKET`` (in a volume only the hub shares, mode 0660, group ``DOCKER_PROXY_GID``:
the hub's user group), so nothing on any network reaches it. Every request is checked
with the rules in ``docker_proxy`` and, when it passes, sent to the engine; the answer goes
back whole (the spawner's requests have short answers; streaming ones are refused anyway).
"""

import http.client
import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingUnixStreamServer
from urllib.parse import quote, urlsplit

from . import (
    MAX_BODY_BYTES,
    Refused,
    Rules,
    check_archive,
    check_create,
    check_image,
    check_pull,
    route,
)

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


def engine(method, path, body=None, headers=None):
    """(status, headers, body) of one request to the engine."""
    connection = EngineConnection(ENGINE_SOCKET)
    try:
        connection.request(method, path, body=body, headers=headers or {})
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
        url = urlsplit(self.path)
        try:
            body = self._read_body()
            action, container = route(self.command, url.path)
            if action == "create":
                check_create(self.rules, url.query, body)
            elif action == "pull":
                check_pull(self.rules, url.query)
            elif action == "image":
                check_image(self.rules, container)
            elif container is not None:
                state = self._ours(container)
                if state is None:
                    # as if it did not exist: the hub learns nothing of other containers
                    return self._answer(404, {"message": f"No such container: {container}"})
                if action == "archive":
                    if state.get("Running"):
                        raise Refused("files may only be put into a container that is not running")
                    check_archive(url.query, body)
        except Refused as e:
            self.log_message("refused %s %s: %s", self.command, url.path, e)
            return self._answer(403, {"message": f"refused by the Docker API filter: {e}"})
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        status, answer_headers, answer = engine(self.command, self.path, body or None, headers)
        self.send_response(status)
        for key, value in answer_headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

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
        """The container's state when it is one of ours, else None."""
        status, _, answer = engine("GET", f"/containers/{quote(container)}/json")
        if status != 200:
            return None
        inspect = json.loads(answer)
        if not self.rules.owns(inspect.get("Name", "")):
            return None
        return inspect.get("State") or {}

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
    FilterHandler.rules = Rules.from_env(os.environ)
    path = os.environ.get("DOCKER_PROXY_SOCKET", "/run/docker-proxy/docker.sock")
    if os.path.exists(path):
        os.remove(path)  # left by the last run
    server = Server(path, FilterHandler)
    server.daemon_threads = True
    # the hub's group may connect; root owns it and may give it to a group it is a member of
    # (compose.yaml: group_add), so no capability is needed
    os.chown(path, -1, int(os.environ.get("DOCKER_PROXY_GID", "999")))
    os.chmod(path, 0o660)
    print(f"docker-proxy: filtering the Docker API on {path}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
