"""The data store server (DSS): its v3 JSON-RPC API (`METHODS`), the session-workspace
upload, the plain GET file download and, for api-version <= 3.5, the legacy upload through
the query v1 aggregation service (`QUERY_V1_METHODS`). Fast download's file server is in
fast_download.py."""

import json
import time
import uuid
from urllib.parse import unquote

from . import seed
from .criteria import matches, view
from .dtos import dataset_file_dtos
from .jsonrpc import AUTHORIZATION_FAILURE, RpcError, signed_in
from .protocol import DSS_PREFIX, FAST_DOWNLOAD

# --- DSS v3 JSON-RPC ------------------------------------------------------------------------


def search_files(call, session):
    criteria = call.arg(1, default={})
    datasets = call.state.datasets
    found = []
    for perm_id, record in datasets.items():
        if matches({"kind": "file", "dataSet": view(datasets, "dataSet", perm_id)}, criteria):
            found.extend(dataset_file_dtos(perm_id, record, call.base_url))
    return {"objects": found, "totalCount": len(found)}


def create_fast_download_session(call, session):
    state = call.state
    items = []
    for file_id in call.arg(1, list, []):
        item = file_id.get("filePath") if isinstance(file_id, dict) else None
        perm_id, _, path = str(item).partition("/")
        if path not in state.datasets.get(perm_id, {}).get("files", {}):
            raise RpcError(f"File '{item}' does not exist.")
        items.append(file_id)
    transfer_user = uuid.uuid4().hex
    with state.lock:
        state.transfer_users[transfer_user] = (session.token, [f["filePath"] for f in items])
    return {
        "@type": "dss.dto.datasetfile.fastdownload.FastDownloadSession",
        "downloadUrl": call.base_url + FAST_DOWNLOAD,
        "fileTransferUserSessionId": transfer_user,
        "files": items,
        "options": call.arg(2),
    }


def create_uploaded_data_set(call, session):
    state = call.state
    creation = call.arg(1, dict, {})
    type_code = str((creation.get("typeId") or {}).get("permId", "")).upper()
    if type_code not in seed.DATASET_TYPES:
        raise RpcError(f"Unknown data set type '{type_code}'.")
    upload_id = creation.get("uploadId")
    workspace = state.workspaces.get(session.token, {})
    prefix = f"{upload_id}/"
    files = {
        "original/" + path[len(prefix) :]: bytes(data)
        for path, data in workspace.items()
        if isinstance(upload_id, str) and path.startswith(prefix)
    }
    if not files:
        raise RpcError(f"No uploaded files found for upload id '{upload_id}'.")
    sample = creation.get("sampleId") or {}
    experiment = creation.get("experimentId") or {}
    parents = [p.get("permId") for p in creation.get("parentIds") or [] if isinstance(p, dict)]
    perm_id = register_dataset(
        state,
        session,
        type_code,
        experiment=experiment.get("identifier") or experiment.get("permId"),
        sample=sample.get("permId") or sample.get("identifier"),
        parents=parents,
        properties=creation.get("properties") or {},
        files=files,
    )
    for path in [p for p in workspace if p.startswith(prefix)]:
        del workspace[path]
    return {"@type": "as.dto.dataset.id.DataSetPermId", "permId": perm_id}


METHODS = {
    "searchFiles": signed_in(search_files),
    "createFastDownloadSession": signed_in(create_fast_download_session),
    "createUploadedDataSet": signed_in(create_uploaded_data_set),
}


def register_dataset(state, session, type_code, experiment, sample, parents, properties, files):
    """Register a dataset the way openBIS does: the sample wins as owner; a sample
    owner implies its experiment."""
    if session.user in state.observers:
        raise RpcError(
            "Authorization failure: ERROR: \"None of method roles '[PROJECT_USER, SPACE_USER, "
            f"SPACE_ETL_SERVER]' could be found in roles of user '{session.user}'.\".",
            AUTHORIZATION_FAILURE,
        )
    sample_identifier = None
    if sample is not None:
        if str(sample).upper() not in (seed.SAMPLE_PERM_ID, seed.SAMPLE):
            raise RpcError(f"Object '{sample}' not found.")
        sample_identifier = seed.SAMPLE
        experiment = seed.EXPERIMENT
    elif experiment is not None:
        if str(experiment).upper() not in (seed.EXPERIMENT_PERM_ID, seed.EXPERIMENT):
            raise RpcError(f"Collection '{experiment}' not found.")
        experiment = seed.EXPERIMENT
    else:
        raise RpcError("A data set needs an experiment or a sample as its owner.")
    for parent in parents:
        if parent not in state.datasets:
            raise RpcError(f"Parent data set '{parent}' not found.")
    allowed = set(seed.DATASET_TYPES[type_code])
    props = {}
    for key, value in (properties or {}).items():
        code = str(key).upper()
        if code not in allowed:
            raise RpcError(f"Property type '{code}' is not assigned to type '{type_code}'.")
        if value is not None:
            props[code] = value
    with state.lock:
        perm_id = state.new_perm_id()
        state.datasets[perm_id] = {
            "permId": perm_id,
            "type": type_code,
            "experiment": experiment,
            "sample": sample_identifier,
            "parents": list(parents),
            "properties": props,
            "files": files,
            "registrator": session.user,
            "registered": int(time.time() * 1000),
        }
        state.created.append(perm_id)
    return perm_id


# --- query v1: legacy upload (api-version <= 3.5) -------------------------------------------


def create_report_from_aggregation_service(call, session):
    """The dataset-uploader ingestion service: `insertDataSet` from the session workspace."""
    args = call.arg(3, dict, {})
    if args.get("method") != "insertDataSet":
        raise RpcError(f"Unknown aggregation service method '{args.get('method')}'.")
    workspace = call.state.workspaces.get(session.token, {})
    files = {}
    for name in args.get("fileNames") or []:
        if name not in workspace:
            raise RpcError(f"File '{name}' is not in the session workspace.")
        files["original/" + name.rsplit("/", 1)[-1]] = bytes(workspace.pop(name))
    parents = [
        p.get("permId") if isinstance(p, dict) else p for p in args.get("parentIdentifiers") or []
    ]
    try:
        perm_id = register_dataset(
            call.state,
            session,
            str(args.get("dataSetType", "")).upper(),
            experiment=args.get("experimentIdentifier"),
            sample=args.get("sampleIdentifier"),
            parents=parents,
            properties=args.get("properties") or {},
            files=files,
        )
        row = [{"value": "OK"}, {"value": "Data set registered"}, {"value": perm_id}]
    except (RpcError, KeyError) as exc:
        row = [{"value": "ERROR"}, {"value": str(exc)}, {"value": None}]
    return {
        "@type": "QueryTableModel",
        "columns": [{"title": "STATUS"}, {"title": "MESSAGE"}, {"title": "RESULT"}],
        "rows": [row],
    }


QUERY_V1_METHODS = {
    "createReportFromAggregationService": signed_in(create_report_from_aggregation_service),
}

# --- plain HTTP: session workspace upload, GET download ---------------------------------------


def upload(request):
    """Store one (possibly partial) file upload; answer like the DSS upload servlet."""
    state, query, body = request.state, request.query, request.body
    state.request_counts["session_workspace_file_upload"] += 1
    token = query.get("sessionID", [None])[0]
    filename = query.get("filename", [""])[0]
    start = int(query.get("startByte", ["0"])[0] or 0)
    try:
        state.session(token)
    except RpcError as exc:
        return 200, f'<message type="error">{exc.message}</message>'.encode(), "text/xml"
    if not filename or ".." in filename.split("/") or start < 0:
        return 200, b'<message type="error">Invalid file name or range</message>', "text/xml"
    with state.lock:
        workspace = state.workspaces.setdefault(token, {})
        data = workspace.setdefault(filename, bytearray())
        if len(data) < start:
            data.extend(b"\0" * (start - len(data)))
        data[start : start + len(body)] = body
        size = len(data)
    answer = {
        "id": int(query.get("id", ["1"])[0] or 1),
        "startByte": start,
        "endByte": start + len(body),
        "filename": filename,
        "size": size,
        "status": "ok",
    }
    return 200, json.dumps(answer).encode(), "application/json"


def download(request):
    """GET /datastore_server/<permId>/<path>?sessionID=T: the legacy file download."""
    state = request.state
    state.request_counts["datastore_server GET"] += 1
    try:
        state.session(request.query.get("sessionID", [None])[0])
    except RpcError as exc:
        return 401, exc.message.encode(), "text/plain"
    perm_id, _, file_path = unquote(request.path[len(DSS_PREFIX) :]).partition("/")
    data = state.datasets.get(perm_id, {}).get("files", {}).get(file_path)
    if data is None:
        return 404, b"File not found", "text/plain"
    return 200, bytes(data), "application/octet-stream"
