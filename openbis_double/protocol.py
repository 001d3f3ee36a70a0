"""What every API area shares: the endpoint paths, the Request a route gets, JSON answers."""

import json
from dataclasses import dataclass

AS_V3 = "/openbis/openbis/rmi-application-server-v3.json"
QUERY_V1 = "/openbis/openbis/rmi-query-v1.json"
DSS_V3 = "/datastore_server/rmi-data-store-server-v3.json"
UPLOAD = "/datastore_server/session_workspace_file_upload"
FAST_DOWNLOAD = "/datastore_server/fast_download"
DSS_PREFIX = "/datastore_server/"
CONTROL_PREFIX = "/__double__/"


@dataclass(frozen=True)
class Request:
    """One HTTP request as a route sees it; a route returns (status, body bytes, content type)."""

    state: object  # state.State
    http_method: str
    path: str
    query: dict  # parse_qs: name -> [values]
    body: bytes
    base_url: str  # scheme and Host the client used, e.g. https://openbis:8443


def json_answer(obj, status=200):
    return status, json.dumps(obj).encode(), "application/json"
