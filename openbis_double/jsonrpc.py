"""JSON-RPC 2.0 the way openBIS answers it: every answer is HTTP 200 with a `result` or an
openBIS-style `error {code, message, data.exceptionTypeName}`.

An endpoint is a dispatch table, a dict from method name to handler(call). Handlers that
need a live session are wrapped in `signed_in`, which checks params[0] first, as openBIS does.
"""

import functools
import json
from dataclasses import dataclass

INVALID_SESSION = "ch.systemsx.cisd.common.exceptions.InvalidSessionException"
USER_FAILURE = "ch.systemsx.cisd.common.exceptions.UserFailureException"
AUTHORIZATION_FAILURE = "ch.systemsx.cisd.common.exceptions.AuthorizationFailureException"


class RpcError(Exception):
    """Becomes an openBIS-style JSON-RPC error (HTTP 200, pyBIS raises ValueError)."""

    def __init__(self, message, exception_type=USER_FAILURE, code=0):
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type
        self.code = code


def method_not_found(method):
    return RpcError(
        f"The method '{method}' is not found", "org.json.rpc.MethodNotFoundException", -32601
    )


@dataclass(frozen=True)
class Call:
    """One JSON-RPC call as a handler sees it."""

    state: object  # state.State
    params: list
    base_url: str

    @property
    def token(self):
        """The session token: openBIS methods take it as their first parameter."""
        return self.params[0] if self.params else None

    def arg(self, index, kind=None, default=None):
        """params[index] when present (and an instance of `kind`, if given), else default."""
        if len(self.params) > index and (kind is None or isinstance(self.params[index], kind)):
            return self.params[index]
        return default


def signed_in(handler):
    """handler(call, session) as handler(call): the session (params[0]) is checked first."""

    @functools.wraps(handler)
    def checked(call):
        return handler(call, call.state.session(call.token))

    return checked


def error_answer(request_id, error):
    answer = {
        "id": request_id,
        "jsonrpc": "2.0",
        "error": {
            "code": error.code,
            "message": error.message,
            "data": {"exceptionTypeName": error.exception_type, "message": error.message},
        },
    }
    return 200, json.dumps(answer).encode(), "application/json"


def endpoint(methods):
    """A route answering JSON-RPC with the dispatch table `methods` (name -> handler(call))."""

    def answer(request):
        try:
            message = json.loads(request.body)
        except ValueError:
            return error_answer(None, RpcError("JSON parse error", code=-32700))
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return error_answer(None, RpcError("Invalid JSON-RPC request", code=-32600))
        request_id = message.get("id")
        method = message["method"]
        params = message.get("params")
        params = params if isinstance(params, list) else []
        request.state.request_counts[method] += 1
        try:
            handler = methods.get(method)
            if handler is None:
                raise method_not_found(method)
            result = handler(Call(request.state, params, request.base_url))
        except RpcError as exc:
            return error_answer(request_id, exc)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # Wrong shapes from a client are user errors in openBIS too, not crashes.
            return error_answer(request_id, RpcError(f"Invalid request: {exc!r}"))
        answer = {"id": request_id, "jsonrpc": "2.0", "result": result}
        return 200, json.dumps(answer).encode(), "application/json"

    return answer
