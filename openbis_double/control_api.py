"""The test-only control API under /__double__/ (server side; control.py is the client):
expire sessions, add users, mint personal access tokens, read back created datasets and
their files, reset, and count requests. JSON in and out; see README.md."""

import hashlib
import json
import re
from urllib.parse import unquote

from . import seed
from .protocol import CONTROL_PREFIX, json_answer

_DATASET_FILE = re.compile(r"datasets/([^/]+)/files/(.+)")


def handle(request):
    """The route for everything under /__double__/: dispatch on (HTTP method, name)."""
    name = request.path[len(CONTROL_PREFIX) :]
    try:
        args = json.loads(request.body) if request.body else {}
    except ValueError:
        return json_answer({"error": "malformed JSON"}, 400)
    if not isinstance(args, dict):
        return json_answer({"error": "expected a JSON object"}, 400)
    call = CALLS.get((request.http_method, name))
    if call is not None:
        return call(request.state, args, request.query)
    match = _DATASET_FILE.fullmatch(name)
    if request.http_method == "GET" and match:
        return dataset_file(request.state, match[1], unquote(match[2]))
    return json_answer({"error": f"unknown control call {request.http_method} {name}"}, 404)


def expire(state, args, query):
    return json_answer({"expired": state.expire(user=args.get("user"), token=args.get("token"))})


def set_user(state, args, query):
    user, password = args.get("user"), args.get("password")
    if not isinstance(user, str) or not isinstance(password, str) or not user:
        return json_answer({"error": "user and password are required"}, 400)
    with state.lock:
        state.users[user] = password
    return json_answer({"user": user})


def personal_access_token(state, args, query):
    if args.get("user") not in state.users:
        return json_answer({"error": "no such user"}, 404)
    return json_answer({"token": state.new_token(args["user"], pat=True)})


def observer(state, args, query):
    """The user may read but not write until the next reset (openBIS's SPACE_OBSERVER)."""
    if args.get("user") not in state.users:
        return json_answer({"error": "no such user"}, 404)
    with state.lock:
        state.observers.add(args["user"])
    return json_answer({"observer": args["user"]})


def reset(state, args, query):
    state.reset()
    return json_answer({"reset": True})


def created_datasets(state, args, query):
    with state.lock:
        return json_answer([describe(state, p) for p in state.created])


def request_counts(state, args, query):
    with state.lock:
        counts = dict(state.request_counts)
    method = query.get("method", [None])[0]
    if method is not None:
        return json_answer({"method": method, "count": counts.get(method, 0)})
    return json_answer({"counts": counts})


CALLS = {
    ("POST", "expire"): expire,
    ("POST", "users"): set_user,
    ("POST", "pat"): personal_access_token,
    ("POST", "observer"): observer,
    ("POST", "reset"): reset,
    ("GET", "datasets"): created_datasets,
    ("GET", "requests"): request_counts,
}


def dataset_file(state, perm_id, path):
    """GET /__double__/datasets/<permId>/files/<path>: raw bytes (seeded or created)."""
    data = state.datasets.get(perm_id, {}).get("files", {}).get(path)
    if data is None:
        return json_answer({"error": "no such file"}, 404)
    return 200, bytes(data), "application/octet-stream"


def describe(state, perm_id):
    """A created dataset as GET /__double__/datasets lists it."""
    record = state.datasets[perm_id]
    owner = (
        {"sample": {"identifier": record["sample"], "permId": seed.SAMPLE_PERM_ID}}
        if record["sample"]
        else {"experiment": {"identifier": record["experiment"]}}
    )
    return {
        "permId": perm_id,
        "type": record["type"],
        "owner": owner,
        "experiment": record["experiment"],
        "sample": record["sample"],
        "parents": list(record["parents"]),
        "properties": dict(record["properties"]),
        "registrator": record["registrator"],
        "files": [
            {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for path, data in sorted(record["files"].items())
        ],
    }
