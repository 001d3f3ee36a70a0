"""Sign-in, token refresh and hand-over in-process: ``OpenBISAuthenticator`` against a fake
openBIS, ``handover`` against a fake user server, both tornado apps on 127.0.0.1 in the test's
own event loop (the real hub and servers: tests/test_auth.py)."""

import asyncio
import json
import logging
from types import SimpleNamespace

import pytest
from openbis_jupyterhub import contract
from openbis_jupyterhub.hub import handover
from openbis_jupyterhub.hub.auth import OpenBISAuthenticator
from openbis_jupyterhub.hub.openbis import AS_V3_PATH, OpenBISUnavailable
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets.config import Config

USERS = {"JDoe": "jdoe-password"}


class FakeOpenBIS(web.RequestHandler):
    """The three JSON-RPC calls the hub makes; sessions are ``<user>-<n>``."""

    def initialize(self, sessions):
        self.sessions = sessions

    def post(self):
        call = json.loads(self.request.body)
        method, params = call["method"], call["params"]
        if method == "login":
            user, password = params
            result = None
            if USERS.get(user) == password:
                result = f"{user}-{len(self.sessions) + 1}"
                self.sessions[result] = user
        elif method == "isSessionActive":
            result = params[0] in self.sessions
        elif method == "getSessionInformation":
            result = {"userName": self.sessions[params[0]]}
        self.finish({"jsonrpc": "2.0", "id": call["id"], "result": result})


class FakeUserServer(web.RequestHandler):
    """A user's server: records every request; ``answers[path]`` = (status, JSON body)."""

    def initialize(self, received, answers):
        self.received, self.answers = received, answers

    def _answer(self, path):
        self.received.append(
            (self.request.method, path, self.request.headers.get("Authorization"),
             self.request.body)
        )  # fmt: skip
        status, body = self.answers.get(path, (200, {}))
        self.set_status(status)
        self.finish(body)

    put = post = _answer


async def serve(app) -> tuple[str, HTTPServer]:
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    return f"http://127.0.0.1:{sockets[0].getsockname()[1]}", server


class User:
    """What sign-in and hand-over use of ``jupyterhub.user.User`` and its spawner."""

    def __init__(self, name, server_url, ready=True):
        self.name = name
        self.auth_state = None
        self.settings = {}  # the hub's tornado settings: no internal_ssl here
        self.spawner = SimpleNamespace(
            user=self,
            ready=ready,
            pending=None if ready else "spawn",
            server=SimpleNamespace(url=f"{server_url}/user/{name}/"),
            start_timeout=5,
            http_timeout=5,
            environment={"JUPYTERHUB_X": "1"},
            log=logging.getLogger("test-handover"),
        )

    async def get_auth_state(self):
        return self.auth_state


def run(test):
    """Run ``test(openbis_url, server_url, sessions, received, answers)`` with both fakes up."""

    async def main():
        sessions, received, answers = {}, [], {}
        openbis_url, openbis = await serve(
            web.Application([(AS_V3_PATH, FakeOpenBIS, {"sessions": sessions})])
        )
        server_url, server = await serve(
            web.Application(
                [(r"/user/JDoe/(.*)", FakeUserServer, {"received": received, "answers": answers})]
            )
        )
        try:
            return await test(openbis_url, server_url, sessions, received, answers)
        finally:
            openbis.stop()
            server.stop()

    return asyncio.run(main())


@pytest.fixture
def service_config():
    """The hub's configuration with the hand-over service registered, as at every start."""
    c = Config()
    handover.configure(c)
    return c


def service_token(c) -> str:
    services, roles = c.JupyterHub.services.get_value([]), c.JupyterHub.load_roles.get_value([])
    (service,) = [s for s in services if s["name"] == contract.HANDOVER_SERVICE]
    (role,) = [r for r in roles if r["name"] == contract.HANDOVER_SERVICE]
    assert role["scopes"] == ["access:servers"]
    return service["api_token"]


async def sign_in(authenticator, data):
    handler = SimpleNamespace()
    return await authenticator.authenticate(handler, data), handler


def test_an_eln_token_signs_in_as_the_openbis_user():
    async def test(openbis_url, server_url, sessions, received, answers):
        authenticator = OpenBISAuthenticator(openbis_url=openbis_url)
        sessions["JDoe-7"] = "JDoe"
        signed_in, handler = await sign_in(authenticator, {"token": "JDoe-7"})
        assert signed_in == {"name": "JDoe", "auth_state": {"openbis_token": "JDoe-7"}}
        assert handler.openbis_user_id == "JDoe"  # the login page tells "not allowed" apart
        assert (await sign_in(authenticator, {"token": "JDoe-8"}))[0] is None  # not a session

    run(test)


def test_a_password_becomes_a_new_openbis_session():
    async def test(openbis_url, server_url, sessions, received, answers):
        authenticator = OpenBISAuthenticator(openbis_url=openbis_url)
        signed_in, _ = await sign_in(authenticator, {"username": "JDoe", "password": USERS["JDoe"]})
        assert signed_in["name"] == "JDoe"
        assert sessions[signed_in["auth_state"]["openbis_token"]] == "JDoe"
        wrong = {"username": "JDoe", "password": "guess"}
        assert (await sign_in(authenticator, wrong))[0] is None
        assert (await sign_in(authenticator, {"username": "JDoe", "password": ""}))[0] is None

    run(test)


class OpenBISAskedAtOnce(web.RequestHandler):
    """An openBIS that answers a token's two questions only once both have arrived (a hub
    asking one after the other gets a JSON-RPC error); ``state["active"]`` is its answer to
    isSessionActive, and the session is always JDoe's."""

    def initialize(self, state):
        self.state = state

    async def post(self):
        call = json.loads(self.request.body)
        self.state["asked"].append(call["method"])
        if len(self.state["asked"]) % 2 == 0:
            self.state["both"].set()
        try:
            await asyncio.wait_for(self.state["both"].wait(), 5)
        except TimeoutError:
            return self.finish({"jsonrpc": "2.0", "id": call["id"], "error": {"message": "one"}})
        results = {
            "isSessionActive": self.state["active"],
            "getSessionInformation": {"userName": "JDoe"},
        }
        self.finish({"jsonrpc": "2.0", "id": call["id"], "result": results[call["method"]]})


def test_a_token_is_checked_with_both_questions_at_once():
    """One round trip to openBIS per sign-in: isSessionActive and getSessionInformation go out
    together, and the session's owner counts only when openBIS says the session is active."""

    async def main():
        state = {"asked": [], "both": asyncio.Event(), "active": True}
        url, openbis = await serve(
            web.Application([(AS_V3_PATH, OpenBISAskedAtOnce, {"state": state})])
        )
        try:
            authenticator = OpenBISAuthenticator(openbis_url=url)
            assert (await sign_in(authenticator, {"token": "JDoe-1"}))[0]["name"] == "JDoe"
            assert sorted(state["asked"]) == ["getSessionInformation", "isSessionActive"]
            state.update(both=asyncio.Event(), active=False)  # logged out since
            assert (await sign_in(authenticator, {"token": "JDoe-1"}))[0] is None
        finally:
            openbis.stop()

    asyncio.run(main())


def test_openbis_down_is_told_apart_from_a_refused_token():
    async def test(openbis_url, server_url, sessions, received, answers):
        # the user server's address answers no JSON-RPC: openBIS "did not answer" (503)
        authenticator = OpenBISAuthenticator(openbis_url=server_url, openbis_timeout=2)
        with pytest.raises(OpenBISUnavailable, match="did not answer isSessionActive"):
            await sign_in(authenticator, {"token": "JDoe-1"})

    run(test)


def test_a_new_sign_in_hands_the_new_token_to_the_running_server(service_config):
    async def test(openbis_url, server_url, sessions, received, answers):
        authenticator = OpenBISAuthenticator(openbis_url=openbis_url)
        user = User("JDoe", server_url)
        for _ in range(2):  # the first sign-in, then a refresh with a newer session
            password = {"username": "JDoe", "password": USERS["JDoe"]}
            signed_in, _ = await sign_in(authenticator, password)
            user.auth_state = signed_in["auth_state"]  # what JupyterHub stores, encrypted
            await handover.send_token(user)
        assert [r[:3] for r in received] == [
            ("PUT", contract.TOKEN_PATH, f"token {service_token(service_config)}")
        ] * 2
        assert [json.loads(r[3]) for r in received] == [{"token": "JDoe-1"}, {"token": "JDoe-2"}]

    run(test)


def test_no_token_goes_to_a_server_that_is_not_ready_or_refuses(service_config, caplog):
    async def test(openbis_url, server_url, sessions, received, answers):
        user = User("JDoe", server_url, ready=False)
        user.auth_state = {"openbis_token": "JDoe-1"}
        await handover.send_token(user)
        assert received == []
        user.spawner.ready = True
        answers[contract.TOKEN_PATH] = (403, {"reason": "not the hand-over service"})
        with caplog.at_level(logging.WARNING):
            await handover.send_token(user)  # logged, not raised: sign-in goes on
        assert "Could not hand the new openBIS token to JDoe" in caplog.text
        assert "JDoe-1" not in caplog.text

    run(test)


def test_a_starting_server_gets_the_token_once_it_is_ready_never_in_its_environment(
    service_config, tmp_path
):
    async def test(openbis_url, server_url, sessions, received, answers):
        ca = tmp_path / "ca.pem"
        ca.write_text("PEM of the openBIS CA")
        authenticator = OpenBISAuthenticator(openbis_url=openbis_url, openbis_ca_file=str(ca))
        user = User("JDoe", server_url, ready=False)
        user.auth_state = {"openbis_token": "JDoe-1"}
        await authenticator.pre_spawn_start(user, user.spawner)
        assert user.spawner.environment == {
            "JUPYTERHUB_X": "1",
            contract.ENV_OPENBIS_URL: openbis_url,
            contract.ENV_OPENBIS_CA_CERT: "PEM of the openBIS CA",
        }
        await asyncio.sleep(0.2)
        assert received == []  # still starting
        user.spawner.pending, user.spawner.ready = None, True
        await asyncio.wait_for(user.spawner._openbis_handover_task, 5)
        assert [json.loads(r[3]) for r in received] == [{"token": "JDoe-1"}]

    run(test)


def test_calls_to_a_server_answer_json_or_say_why_not(service_config):
    async def test(openbis_url, server_url, sessions, received, answers):
        user = User("JDoe", server_url)
        answers[contract.REOPEN_PATH] = (200, {"folder": "x", "notebook": "x/a.ipynb"})
        answer = await handover.call(user.spawner, contract.REOPEN_PATH, b'{"permId": "1"}', 5)
        assert answer["notebook"] == "x/a.ipynb"
        assert received[-1][2] == f"token {service_token(service_config)}"
        answers[contract.REOPEN_PATH] = (404, {"reason": "openBIS has no dataset 1"})
        with pytest.raises(handover.ServerRefused) as refused:
            await handover.call(user.spawner, contract.REOPEN_PATH, b"{}", 5)
        assert (refused.value.code, refused.value.reason) == (404, "openBIS has no dataset 1")
        user.spawner.server.url = openbis_url.rsplit(":", 1)[0] + ":1/user/JDoe/"
        with pytest.raises(handover.ServerUnavailable, match="did not answer"):
            await handover.call(user.spawner, contract.REOPEN_PATH, b"{}", 5)

    run(test)
