"""Client for a running double: the real `login` JSON-RPC plus the /__double__/ test API.

Standard library only, so it also works where `requests` is not installed.
"""

import json
import ssl
import urllib.request
from urllib.parse import quote

from .protocol import AS_V3


class DoubleControl:
    """Drive an openBIS test double at `url` (https://host:port), trusting `ca_file`."""

    def __init__(self, url, ca_file=None, timeout=30.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def _open(self, path, payload=None, method=None):
        data = None if payload is None else json.dumps(payload).encode()
        # The scheme is checked in __init__ (ruff S310 guards against file: URLs).
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        opened = urllib.request.urlopen(request, timeout=self.timeout, context=self._context)  # noqa: S310
        with opened as resp:
            return resp.read()

    def _json(self, path, payload=None, method=None):
        return json.loads(self._open(path, payload, method))

    def rpc(self, method, params, endpoint=AS_V3):
        """One JSON-RPC call; returns the whole answer ({"result": ...} or {"error": ...})."""
        body = {"method": method, "params": params, "id": "1", "jsonrpc": "2.0"}
        return self._json(endpoint, body)

    def login(self, user, password):
        """A session token from the real `login` call, or None for bad credentials."""
        return self.rpc("login", [user, password]).get("result")

    def expire(self, user=None, token=None):
        """Kill every session of `user`, or the one session `token`; returns how many died."""
        if (user is None) == (token is None):
            raise ValueError("give exactly one of user= or token=")
        payload = {"user": user} if user is not None else {"token": token}
        return self._json("/__double__/expire", payload)["expired"]

    def add_user(self, user, password):
        self._json("/__double__/users", {"user": user, "password": password})

    def observer(self, user):
        """Make `user` read-only until the next reset: registering a dataset fails with
        openBIS's authorization failure."""
        self._json("/__double__/observer", {"user": user})

    def pat(self, user):
        """A new personal access token ($pat-...) for `user`."""
        return self._json("/__double__/pat", {"user": user})["token"]

    def created_datasets(self):
        """Datasets registered through the double, oldest first (see README.md)."""
        return self._json("/__double__/datasets")

    def file(self, perm_id, path):
        """The bytes of one file of a dataset (seeded or created)."""
        return self._open(f"/__double__/datasets/{quote(perm_id)}/files/{quote(path)}")

    def request_count(self, method):
        """How many times `method` was called since the last reset."""
        return self._json(f"/__double__/requests?method={quote(method)}")["count"]

    def request_counts(self):
        return self._json("/__double__/requests")["counts"]

    def reset(self):
        """Forget created datasets, sessions, uploads and request counts (users stay)."""
        self._json("/__double__/reset", {})
