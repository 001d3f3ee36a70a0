"""Run code in a kernel of a user's running server, through the hub's proxy, as a browser does:
REST API to start the kernel, the kernel's websocket to execute."""

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class KernelSession:
    """A kernel in ``server_url`` (``{hub}/user/{name}/``), authenticated with an API token."""

    def __init__(
        self,
        server_url: str,
        token: str,
        kernel_name: str = "python3",
        ca_file: str | None = None,
        path: str = "",
    ):
        """``ca_file``: the CA of an HTTPS hub; ``path``: folder (below the server's root)
        the kernel runs in, as for a notebook opened there."""
        self.server_url = server_url.rstrip("/") + "/"
        self.headers = {"Authorization": f"token {token}"}
        self.ca_file = ca_file
        answer = requests.post(
            self.server_url + "api/kernels",
            json={"name": kernel_name, "path": path},
            headers=self.headers,
            timeout=60,
            verify=ca_file or True,
        )
        answer.raise_for_status()
        self.kernel_id = answer.json()["id"]

    def execute(self, code: str, timeout: float = 60) -> tuple[str, dict | None]:
        """Run ``code``; return (all stream and result text, the error content or None)."""
        # in a thread of its own: Playwright's sync API keeps an event loop running in this one
        with ThreadPoolExecutor(1) as pool:
            run = pool.submit(asyncio.run, asyncio.wait_for(self._execute(code), timeout))
            return run.result()

    async def _execute(self, code):
        ws_url = self.server_url.replace("http", "ws", 1) + f"api/kernels/{self.kernel_id}/channels"
        conn = await websocket_connect(
            HTTPRequest(ws_url, headers=self.headers, ca_certs=self.ca_file)
        )
        msg_id = uuid.uuid4().hex
        await conn.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "tests",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "stop_on_error": True},
                    "channel": "shell",
                }
            )
        )
        output, error = [], None
        try:
            while True:
                raw = await conn.read_message()
                if raw is None:
                    raise ConnectionError("kernel websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    output.append(content["text"])
                elif kind in ("execute_result", "display_data"):
                    output.append(content["data"].get("text/plain", ""))
                elif kind == "error":
                    error = content
                elif kind == "status" and content["execution_state"] == "idle":
                    return "".join(output), error
        finally:
            conn.close()

    def shutdown(self):
        requests.delete(
            self.server_url + f"api/kernels/{self.kernel_id}",
            headers=self.headers,
            timeout=30,
            verify=self.ca_file or True,
        )
