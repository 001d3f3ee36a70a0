"""One container of the single-user image without a hub: a stand-in for the hub's API beside
it, and the environment JupyterHub's spawner gives jupyterhub-singleuser
(tests/test_singleuser_image.py, benchmarks/singleuser.py)."""

import json
import textwrap
import uuid

# jupyterhub-singleuser exits when it cannot reach its hub's API at start, and asks the hub
# whose token a request carries. A stand-in that answers every request, and names the server's
# user ($JUPYTERHUB_USER) as the owner of every token, will do; it runs next to the image's
# real start script (CMD), in the same container (benchmarks.singleuser: in one of its own).
HUB_STAND_IN = textwrap.dedent(
    """
    import http.server, json, os

    NAME = os.environ["JUPYTERHUB_USER"]
    MODEL = json.dumps({
        "kind": "user", "name": NAME, "admin": False, "groups": [],
        "scopes": [f"access:servers!user={NAME}"], "session_id": None,
    }).encode()

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = MODEL if self.path.rstrip("/").endswith("/api/user") else b"{}"
            self.send_response(200)
            self.send_header("X-JupyterHub-Version", "6.1.1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    http.server.ThreadingHTTPServer(("", 8081), Hub).serve_forever()
    """
)


def hub_environment(user):
    """What JupyterHub's spawner sets for jupyterhub-singleuser."""
    return {
        "JUPYTERHUB_API_TOKEN": uuid.uuid4().hex,
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        "JUPYTERHUB_USER": user,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
        "JUPYTERHUB_SERVICE_PREFIX": f"/user/{user}/",
        "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:8888/user/{user}/",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/user/{user}/oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(
            [f"access:servers!server={user}/", f"access:servers!user={user}"]
        ),
    }
