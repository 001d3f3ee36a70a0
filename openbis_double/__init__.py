"""openBIS test double: the wire protocol the unmodified pyBIS 1.37.5 speaks, nothing more.

One process plays the application server, the data store server and fast download's file
server on one port, with state in memory (see README.md). Run it with
`python -m openbis_double` from the repository root. Modules:

- `__main__`: the command line (port, host, HTTP or HTTPS, api-version, session timeout).
- `server`: the HTTP(S) server; routes each request by path to an API area (`make_server`).
- `protocol`: endpoint paths, the `Request` a route gets, JSON answers.
- `jsonrpc`: openBIS-style JSON-RPC: `RpcError`, `Call`, `signed_in`, the `endpoint`
  that answers from a dispatch table (method name -> handler).
- `application_server`: AS v3 methods (login, sessions, get*/search*, createPermIdStrings).
- `datastore_server`: DSS v3 methods (searchFiles, createFastDownloadSession,
  createUploadedDataSet), session-workspace upload, GET download, query v1 legacy upload.
- `fast_download`: fast download's file server (chunks with header and CRC32s).
- `control_api`: the test-only /__double__/ endpoints (server side).
- `state`: `State`: users, sessions and tokens, datasets, uploads, request counts.
- `dtos`: the JSON objects (DTOs) for spaces, projects, experiments, samples, datasets,
  files, types, people and the data store.
- `criteria`: evaluates the search criteria pyBIS sends.
- `seed`: the fixed users and entities every double starts with.
- `certs`: a throw-away CA and server certificate for HTTPS.
- `control`: `DoubleControl`, the client tests use (login plus the control API).
- `process`: `start_openbis_double`, the double as a subprocess for tests and benchmarks.
"""

from .control import DoubleControl

__all__ = ["DoubleControl"]
