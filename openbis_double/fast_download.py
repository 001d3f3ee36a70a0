"""Fast download's file server (POST /datastore_server/fast_download), protocol versions 1
and 2: a download session splits the files into 1 MiB chunks, each sent with the big-endian
header and the CRC32s pyBIS checks. Errors are JSON {"error", "retriable"} with HTTP 200."""

import binascii
import json
import uuid
from collections import deque

from .protocol import json_answer

CHUNK_SIZE = 1024 * 1024


def handle(request):
    """The route: parse the form-like JSON body, then dispatch on its `method`."""
    state = request.state
    try:
        params = {
            k: v[0] if isinstance(v, list) else v for k, v in json.loads(request.body).items()
        }
    except (ValueError, AttributeError, IndexError):
        return json_answer({"error": "Malformed request", "retriable": False})
    method = params.get("method")
    state.request_counts[f"fastDownload:{method}"] += 1
    if method == "startDownloadSession":
        return json_answer(start_download_session(state, params))
    download = state.downloads.get(params.get("downloadSessionId"))
    if download is None:
        return json_answer({"error": "Unknown download session", "retriable": False})
    step = SESSION_METHODS.get(method) if isinstance(method, str) else None
    if step is None:
        return json_answer({"error": f"Unknown method {method}", "retriable": False})
    return step(state, download, params)


def start_download_session(state, params):
    transfer = state.transfer_users.get(params.get("userSessionId"))
    if transfer is None or not state.is_active(transfer[0]):
        return {"error": "Invalid user session", "retriable": False}
    raw_items = str(params.get("downloadItemIds", ""))
    # Protocol version 2 sends a JSON list, version 1 a comma-separated string.
    if raw_items.startswith("["):
        items = json.loads(raw_items)
    else:
        items = [i.strip() for i in raw_items.split(",")]
    chunks, ranges = [], {}
    for item in items:
        if item not in transfer[1]:
            return {"error": f"Item {item} not in this session", "retriable": False}
        perm_id, _, path = item.partition("/")
        data = state.datasets[perm_id]["files"][path]
        first = len(chunks)
        for offset in range(0, max(len(data), 1), CHUNK_SIZE):
            chunks.append(_chunk_maker(len(chunks), item, path, offset, data))
        ranges[item] = f"{first}:{len(chunks) - 1}"
    streams = max(1, min(int(params.get("wishedNumberOfStreams") or 1), 4))
    session_id = uuid.uuid4().hex
    with state.lock:
        state.downloads[session_id] = {"chunks": chunks, "queue": deque()}
    return {
        "downloadSessionId": session_id,
        "ranges": ranges,
        "streamIds": [f"stream-{i}" for i in range(streams)],
    }


def queue(state, download, params):
    for chunk_range in str(params.get("ranges", "")).split(","):
        first, _, last = chunk_range.strip().partition(":")
        if first.isdigit() and last.isdigit():
            with state.lock:
                download["queue"].extend(range(int(first), int(last) + 1))
    return json_answer({})


def download_chunk(state, download, params):
    with state.lock:
        number = download["queue"].popleft() if download["queue"] else None
    if number is None:
        return json_answer({"error": "No chunk queued", "retriable": True})
    return 200, download["chunks"][number](), "application/octet-stream"


def finish_download_session(state, download, params):
    with state.lock:
        state.downloads.pop(params.get("downloadSessionId"), None)
    return json_answer({})


# methods on an existing download session (startDownloadSession creates one)
SESSION_METHODS = {
    "queue": queue,
    "download": download_chunk,
    "finishDownloadSession": finish_download_session,
}


def _chunk_maker(sequence, item_id, path, offset, data):
    """A closure building one fast-download chunk lazily (big-endian header, CRC32s)."""

    def build():
        payload = bytes(data[offset : offset + CHUNK_SIZE])
        item = item_id.encode()
        file_path = path.encode()
        header = (
            sequence.to_bytes(4, "big")
            + len(item).to_bytes(2, "big")
            + b"\0"
            + len(file_path).to_bytes(2, "big")
            + offset.to_bytes(8, "big")
            + len(payload).to_bytes(4, "big")
            + item
            + file_path
        )
        return (
            header
            + binascii.crc32(header).to_bytes(8, "big")
            + payload
            + binascii.crc32(payload).to_bytes(8, "big")
        )

    return build
