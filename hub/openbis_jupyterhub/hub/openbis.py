"""The few openBIS application-server calls the hub makes, over the v3 JSON-RPC API.

The user is always taken from openBIS (``getSessionInformation``), never from the
token text: personal access tokens (``$pat-…``) and user ids with dashes would break that.
"""

import asyncio
import json
import ssl
from urllib.parse import urljoin

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

AS_V3_PATH = "/openbis/openbis/rmi-application-server-v3.json"


class OpenBISUnavailable(Exception):
    """openBIS did not answer, or answered with something that is not JSON-RPC."""


class OpenBISError(Exception):
    """openBIS answered with a JSON-RPC error."""


def _result(answer):
    """An answer of ``asyncio.gather(..., return_exceptions=True)``: the exception raised."""
    if isinstance(answer, BaseException):
        raise answer
    return answer


class OpenBIS:
    """An asynchronous client for the application server at ``url``.

    ``ca_file`` adds trust for an internal CA; certificate verification is always on.
    """

    def __init__(self, url: str, ca_file: str = "", timeout: float = 10):
        self.url = url
        self.endpoint = urljoin(url, AS_V3_PATH)
        self.timeout = timeout
        self._ssl = ssl.create_default_context()
        if ca_file:
            self._ssl.load_verify_locations(cafile=ca_file)

    async def call(self, method: str, *params):
        """Call ``method`` and return its ``result``; raise OpenBISError on a JSON-RPC error."""
        body = json.dumps({"method": method, "params": list(params), "id": "1", "jsonrpc": "2.0"})
        request = HTTPRequest(
            self.endpoint,
            method="POST",
            body=body,
            headers={"Content-Type": "application/json"},
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
            ssl_options=self._ssl,
        )
        try:
            # tornado's own client, not the configured one: JupyterHub configures the curl
            # client when pycurl is installed (the hub image has it for Zero to JupyterHub),
            # and curl refuses ssl_options
            response = await SimpleAsyncHTTPClient().fetch(request)
            answer = json.loads(response.body)
        except (HTTPClientError, OSError, ValueError) as e:
            # the message names the URL but never the parameters (they hold secrets)
            raise OpenBISUnavailable(f"openBIS at {self.url} did not answer {method}: {e}") from e
        if not isinstance(answer, dict):
            raise OpenBISUnavailable(f"openBIS at {self.url} sent no JSON-RPC answer to {method}")
        if answer.get("error"):
            raise OpenBISError(answer["error"].get("message", "unknown openBIS error"))
        return answer.get("result")

    async def session_user(self, token: str) -> str | None:
        """The openBIS user id of a live session ``token``, or None when it is not valid.

        Both questions go to openBIS at once (one round trip instead of two, on every
        sign-in); who the session belongs to counts only when openBIS says it is active."""
        active, info = await asyncio.gather(
            self.call("isSessionActive", token),
            self.call("getSessionInformation", token),
            return_exceptions=True,
        )
        try:
            if not _result(active):
                return None  # whatever the other answer was
            info = _result(info)
        except OpenBISError:
            return None
        return (info or {}).get("userName") or None

    async def login(self, user: str, password: str) -> str | None:
        """A new session token for ``user``, or None on wrong credentials."""
        try:
            return await self.call("login", user, password) or None
        except OpenBISError:
            return None
