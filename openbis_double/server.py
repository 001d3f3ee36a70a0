"""The HTTP side: one threaded HTTP(S) server on one port, routing each request by path to
the API area that answers it. Routes take a protocol.Request and return (status, body bytes,
content type); this module only moves bytes and never lets an exception escape."""

import http.server
import socket
import ssl
import sys
import traceback
from urllib.parse import parse_qs, urlsplit

from . import application_server, control_api, datastore_server, eln, fast_download
from .jsonrpc import RpcError, endpoint, error_answer
from .protocol import (
    AS_V3,
    CONTROL_PREFIX,
    DSS_PREFIX,
    DSS_V3,
    FAST_DOWNLOAD,
    QUERY_V1,
    UPLOAD,
    Request,
    json_answer,
)

# (HTTP method, exact path) -> route
ROUTES = {
    ("POST", AS_V3): endpoint(application_server.METHODS),
    ("POST", DSS_V3): endpoint(datastore_server.METHODS),
    ("POST", QUERY_V1): endpoint(datastore_server.QUERY_V1_METHODS),
    ("POST", UPLOAD): datastore_server.upload,
    ("POST", FAST_DOWNLOAD): fast_download.handle,
    ("GET", eln.PATH): eln.handle,
}
# the ELN stand-in's own plain-HTTP port (--eln-port) serves its page (and its files) only
ELN_ROUTES = {("GET", eln.PATH): eln.handle, ("GET", "/"): eln.handle}
# then, in order: (HTTP method or None for any, path prefix, route)
PREFIX_ROUTES = [
    (None, CONTROL_PREFIX, control_api.handle),
    ("GET", DSS_PREFIX, datastore_server.download),
]


def route(request):
    """The route for a request: exact paths first, then prefixes; None: nothing there."""
    found = ROUTES.get((request.http_method, request.path))
    if found is not None:
        return found
    for http_method, prefix, prefix_route in PREFIX_ROUTES:
        if http_method in (None, request.http_method) and request.path.startswith(prefix):
            return prefix_route
    return None


def eln_route(request):
    """The route on the ELN stand-in's own port: its page and the files it shows."""
    if request.http_method == "GET" and request.path.startswith(eln.FILES):
        return eln.file
    return ELN_ROUTES.get((request.http_method, request.path))


class Handler(http.server.BaseHTTPRequestHandler):
    """Moves bytes between HTTP and the routes; never lets an exception escape."""

    protocol_version = "HTTP/1.1"
    server_version = "openBIS-test-double"
    timeout = 60  # drop idle keep-alive connections so threads do not pile up
    state: object  # state.State, set on the subclass made by make_server
    router: object  # route or eln_route, likewise

    def setup(self):
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK add ~40 ms to every answer.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()  # applies `timeout` to the socket, so a stuck handshake ends too
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format, *args):
        # Request lines carry session tokens in query strings; never log them.
        pass

    def _base_url(self):
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"{scheme}://{host}"

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, http_method):
        try:
            body = self._body() if http_method == "POST" else b""
            url = urlsplit(self.path)
            request = Request(
                self.state, http_method, url.path, parse_qs(url.query), body, self._base_url()
            )
            found = self.router(request)
            if found is None:
                self._send(*json_answer({"error": f"nothing at {http_method} {url.path}"}, 404))
            else:
                self._send(*found(request))
        except Exception:  # the double must answer, whatever happened
            traceback.print_exc(file=sys.stderr)
            try:
                self._send(*error_answer(None, RpcError("Internal error of the test double")))
            except OSError:
                self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # Clients that hang up or fail the TLS handshake are normal; say so in one line.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            print(f"openbis-double: connection from {client_address[0]}: {exc}", file=sys.stderr)
        else:
            super().handle_error(request, client_address)


def make_server(host, port, state, ssl_context=None, router=route):
    """A ready-to-serve HTTP(S) server answering for `state` (`router`: which routes)."""
    handler = type("BoundHandler", (Handler,), {"state": state, "router": staticmethod(router)})
    server = _Server((host, port), handler)
    if ssl_context is not None:
        # Handshake in the handler thread, not in accept(): one slow client must not
        # stall everyone else.
        server.socket = ssl_context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    return server
