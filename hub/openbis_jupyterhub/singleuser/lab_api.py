"""REST API behind the JupyterLab openBIS panel (``labextension/``), inside each user's server.

Every call connects like the user's notebooks do: ``Openbis()`` with ``OPENBIS_URL`` from the
environment and the session token the hub keeps in ``~/.pybis/<host>.token``. The handlers
are ordinary authenticated Jupyter server API handlers under ``{base_url}openbis/api/``:

    GET  status                         who is signed in to which openBIS; session valid?
    GET  children?kind=&id=             one level of the hierarchy (root, space, project,
                                        experiment, sample, dataset -> files)
    GET  search?q=                      objects, collections, datasets by code, permId or name
    POST downloads {permId, folder}     start downloading a dataset's files into a folder
    GET  downloads/<id>                 its progress: state, bytes done / total, file names
    GET  notebook-context?path=         owner, parents, name, notes an ELN notebook carries
    POST datasets {notebook, ...}       save a notebook (+ HTML, files, environment) as a dataset
    POST reopen {permId}                fetch an analysis notebook into ~/<permId>/ (numbered)
    GET  environment?path=              a re-opened notebook's saved environment vs. this one
    GET  home                           how full the home is: bounded?, size, used, free (home.py)

Errors answer JSON ``{"reason": ...}`` in words meant for the user; an expired session
answers 401 with ``session_hint.HINT``. Nothing is written when a call fails: downloads
land in a hidden folder first and are moved under free names (``N.ext``, ``N 2.ext``, ...,
``validator.numbered_names``) only when complete. Tokens never appear in answers or logs.

The hub's ``/hub/openbis-notebook/open/<permId>`` link calls ``reopen`` too, as the hand-over
service (``contract.REOPEN_PATH``); only ANALYSIS_NOTEBOOK datasets are re-opened.
"""

import ast
import contextlib
import copy
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop

from .. import contract
from ..logscrub import scrub
from ..validator import check_name, numbered_names
from .home import usage
from .session_hint import HINT, is_session_expired

DEFAULT_MAX_BYTES = 10 * 1024**3  # per download or save; OPENBIS_LAB_MAX_BYTES overrides
LIST_LIMIT = 500  # entries per hierarchy level or search kind
ANALYSIS_TYPE = "ANALYSIS_NOTEBOOK"
MARKER = ".openbis-dataset.json"  # written into the folder of a re-opened analysis
ENVIRONMENT_FILES = ("runtime.txt", "requirements.txt", "image.txt")

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="openbis-lab")


class ApiError(web.HTTPError):
    """An answer for the user: HTTP status and one clear sentence (``reason``)."""

    def __init__(self, status: int, reason: str):
        # tornado formats log_message with %; the text may hold any character
        super().__init__(status, reason.replace("%", "%%"))
        self.status = status
        self.text = reason


def max_bytes() -> int:
    try:
        return int(os.environ.get("OPENBIS_LAB_MAX_BYTES") or DEFAULT_MAX_BYTES)
    except ValueError:
        return DEFAULT_MAX_BYTES


def _mb(n: int) -> str:
    return f"{n / 1024**2:.1f} MB"


# --- pyBIS without its prints -----------------------------------------------------------------
# pyBIS prints every request openBIS refuses, session token included, to stdout. A quiet
# section swallows what its own thread prints; other threads' output passes unchanged.


class _ThreadQuietStdout(io.TextIOBase):
    def __init__(self, target):
        self.target = target
        self.local = threading.local()

    def write(self, text):
        if getattr(self.local, "quiet", 0):
            return len(text)
        return self.target.write(text)

    def flush(self):
        self.target.flush()

    def __getattr__(self, name):
        return getattr(self.target, name)


_stdout_lock = threading.Lock()


@contextlib.contextmanager
def quiet():
    with _stdout_lock:
        if not isinstance(sys.stdout, _ThreadQuietStdout):
            sys.stdout = _ThreadQuietStdout(sys.stdout)
        proxy = sys.stdout
    proxy.local.quiet = getattr(proxy.local, "quiet", 0) + 1
    try:
        yield
    finally:
        proxy.local.quiet -= 1


def connect():
    """``Openbis()`` as in the user's notebooks; 401 with the session hint without a live token."""
    url = os.environ.get("OPENBIS_URL")
    if not url:
        raise ApiError(503, "OPENBIS_URL is not set: this server was not started by the hub.")
    from pybis import Openbis  # slow import, first call only

    with quiet():
        o = Openbis()  # reads ~/.pybis/<host>.token and drops it when openBIS says it is dead
    if not o.token:
        raise ApiError(401, HINT)
    return o


def explain(error: BaseException, token: str | None = None) -> ApiError:
    """pyBIS's and requests' errors as ApiErrors, token-free."""
    if isinstance(error, ApiError):
        return error
    if is_session_expired(error):
        return ApiError(401, HINT)
    text = " ".join(str(error).split()) or type(error).__name__
    if token:
        text = text.replace(token, "<session token>")
    text = scrub(text)
    if "Authorization failure" in text or "authoriz" in text.lower():
        return ApiError(403, f"openBIS refused: you have no permission for this. ({text})")
    if re.search(r"no such|not found|does not exist|doesn't exist", text, re.IGNORECASE):
        return ApiError(404, f"openBIS does not know it: {text}")
    name = type(error).__module__ + "." + type(error).__name__
    if name.startswith(("requests.", "urllib3.")):
        host = urlparse(os.environ.get("OPENBIS_URL", "")).hostname
        return ApiError(502, f"openBIS at {host} cannot be reached: {type(error).__name__}")
    return ApiError(502, f"openBIS answered with an error: {text}")


def with_openbis(fn, *args, **kwargs):
    """Run ``fn(o, *args)`` with a fresh connection; every failure becomes an ApiError."""
    o = None
    try:
        o = connect()
        with quiet():
            return fn(o, *args, **kwargs)
    except Exception as e:
        raise explain(e, getattr(o, "token", None)) from e


# --- paths in the user's home -------------------------------------------------------------------


def resolve(root: str | Path, relative: str, *, what: str = "path") -> Path:
    """A path below ``root`` given as Jupyter's API path (``a/b/c``). Refuses absolute paths,
    ``..``, hidden components (``.pybis`` holds the session token) and symbolic links that
    lead outside ``root``."""
    root = Path(root).resolve()
    if not isinstance(relative, str):
        raise ApiError(400, f"The {what} must be text.")
    if relative.startswith("/") or "\\" in relative or "\x00" in relative:
        raise ApiError(400, f"The {what} {relative!r} must be relative to your home.")
    parts = [p for p in relative.split("/") if p]
    for part in parts:
        if part.startswith("."):
            raise ApiError(400, f"The {what} {relative!r} has a hidden or '..' component.")
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root):
        raise ApiError(400, f"The {what} {relative!r} leads outside your home.")
    return path


def api_path(root: str | Path, path: Path) -> str:
    return path.resolve().relative_to(Path(root).resolve()).as_posix()


def free_names(name: str):
    """``validator.numbered_names`` also for names without an extension (``README 2``)."""
    if "." in name:
        yield from numbered_names(name)
    else:
        yield from (n[:-1] for n in numbered_names(name + "."))


def place(source: Path, directory: Path, name: str) -> str:
    """Move ``source`` into ``directory`` under the first free of ``free_names(name)``,
    never replacing a file (hard link: atomic and exclusive). Returns the name used."""
    for candidate in free_names(name):
        target = directory / candidate
        try:
            os.link(source, target)
        except FileExistsError:
            continue
        except OSError:  # file systems without hard links: exclusive create and copy
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out)
        source.unlink()
        return candidate
    raise ApiError(409, f"No free file name left for {name!r} in {directory.name!r}.")


def make_folder(parent: Path, name: str) -> Path:
    """A new folder ``parent/name`` (or ``name 2``, ...), never an existing one."""
    for candidate in free_names(name):
        try:
            (parent / candidate).mkdir()
        except FileExistsError:
            continue
        return parent / candidate
    raise ApiError(409, f"No free folder name left for {name!r}.")


# --- status, browsing, search ---------------------------------------------------------------


def status() -> dict:
    url = os.environ.get("OPENBIS_URL", "")
    answer = {"url": url, "host": urlparse(url).hostname or "", "user": None, "valid": False}
    try:
        info = with_openbis(lambda o: o.get_session_info())
    except ApiError as e:
        return {**answer, "hint": HINT if e.status == 401 else e.text}
    return {**answer, "user": info.userName, "valid": True, "hint": None}


def _rows(things) -> list[dict]:
    df = things.df
    return [] if df is None or len(df) == 0 else df.fillna("").to_dict("records")


def _node(kind, row, **extra) -> dict:
    perm_id = str(row.get("permId") or row.get("code") or "")
    ident = str(row.get("identifier") or (perm_id if kind != "space" else row.get("code")))
    code = str(row.get("code") or ident.rsplit("/", 1)[-1])
    entity_type = row.get("type") or ""
    if isinstance(entity_type, dict):
        entity_type = entity_type.get("code", "")
    return {
        "kind": kind,
        "id": ident,
        "permId": perm_id,
        "code": code,
        "type": str(entity_type),
        "name": str(row.get("$NAME") or ""),
        **extra,
    }


def _datasets(o, **owner) -> list[dict]:
    rows = _rows(o.get_datasets(count=LIST_LIMIT, props=["$name"], **owner))
    if "experiment" in owner:  # those of the collection's objects show under the objects
        rows = [r for r in rows if not r.get("sample")]
    return [_node("dataset", r, id=r["permId"]) for r in rows]


def children(o, kind: str, ident: str) -> list[dict]:
    """One level below (kind, ident); the panel asks for each level when it is opened."""
    if kind == "root":
        return [_node("space", r) for r in _rows(o.get_spaces(count=LIST_LIMIT))]
    if kind == "space":
        return [_node("project", r) for r in _rows(o.get_projects(space=ident, count=LIST_LIMIT))]
    if kind == "project":
        exps = o.get_experiments(project=ident, count=LIST_LIMIT, props=["$name"])
        return [_node("experiment", r) for r in _rows(exps)]
    if kind == "experiment":
        samples = o.get_samples(experiment=ident, count=LIST_LIMIT, props=["$name"])
        return [_node("sample", r) for r in _rows(samples)] + _datasets(o, experiment=ident)
    if kind == "sample":
        return _datasets(o, sample=ident)
    if kind == "dataset":
        return [
            {"kind": "file", "id": f"{ident}/{f['path']}", "path": f["path"], "size": f["size"]}
            for f in dataset_files(o.get_dataset(ident))
        ]
    raise ApiError(400, f"Unknown kind {kind!r}: use root, space, project, experiment, sample.")


def search(o, query: str) -> list[dict]:
    """Objects, collections and datasets whose code or permId is ``query`` or whose name
    contains it."""
    query = query.strip()
    if not query:
        return []
    if len(query) > 200 or "*" in query:
        raise ApiError(400, "Search for a code, a permId or a part of a name (no '*').")
    found: dict[tuple, dict] = {}

    def add(kind, things):
        for row in _rows(things):
            node = _node(kind, row)
            if kind == "dataset":
                node["id"] = node["permId"]
            found.setdefault((kind, node["permId"]), node)

    is_perm_id = contract.PERM_ID.match(query)
    by_id = {"permId": query} if is_perm_id else {"code": query.upper()}
    name = {"$NAME": f"*{query}*"}
    if query.startswith("/"):
        add("sample", o.get_samples(identifier=query, props=["$name"]))
    else:
        add("sample", o.get_samples(**by_id, count=LIST_LIMIT, props=["$name"]))
        add("experiment", o.get_experiments(**by_id, count=LIST_LIMIT, props=["$name"]))
        add("dataset", o.get_datasets(code=query.upper(), count=LIST_LIMIT, props=["$name"]))
    add("sample", o.get_samples(where=name, count=LIST_LIMIT, props=["$name"]))
    add("experiment", o.get_experiments(where=name, count=LIST_LIMIT, props=["$name"]))
    add("dataset", o.get_datasets(where=name, count=LIST_LIMIT, props=["$name"]))
    return list(found.values())


# --- downloads ---------------------------------------------------------------------------------


def dataset_files(ds) -> list[dict]:
    df = ds.get_files(start_folder="/")
    return [
        {"path": str(r["pathInDataSet"]), "size": int(r["fileSize"])}
        for _, r in df.iterrows()
        if not r["isDirectory"]
    ]


class Job:
    """A download's progress, read by the panel while the download runs."""

    def __init__(self, perm_id: str, folder: str):
        self.id = uuid.uuid4().hex
        self.perm_id = perm_id
        self.folder = folder
        self.state = "running"  # running | done | failed
        self.total = 0
        self.staging: Path | None = None
        self.done = 0
        self.files: list[str] = []
        self.error: dict | None = None

    def as_dict(self) -> dict:
        if self.state == "running" and self.staging is not None:
            try:
                staged = sum(f.stat().st_size for f in self.staging.rglob("*") if f.is_file())
            except OSError:  # the download just ended and cleaned up
                staged = 0
            # complete files leave the staging folder for their place: never count backwards
            self.done = max(self.done, staged)
        done = self.done
        return {
            "id": self.id,
            "permId": self.perm_id,
            "folder": self.folder,
            "state": self.state,
            "bytesDone": min(done, self.total),
            "bytesTotal": self.total,
            "files": self.files,
            "error": self.error,
        }


def check_perm_id(perm_id) -> str:
    if not isinstance(perm_id, str) or not contract.PERM_ID.match(perm_id):
        raise ApiError(400, f"{perm_id!r} is not a dataset permId (like 20240115093000000-4).")
    return perm_id


def download_dataset(
    o, perm_id: str, root: str | Path, folder: str, files=None, job: Job | None = None
) -> list[str]:
    """Download ``perm_id``'s files (or the listed ones) into ``root/folder``, each under its
    own name or the first free numbered one. Returns the API paths written; writes nothing
    when it fails."""
    check_perm_id(perm_id)
    directory = resolve(root, folder, what="folder")
    if not directory.is_dir():
        raise ApiError(400, f"The folder {folder!r} does not exist.")
    names = _download_into(o, o.get_dataset(perm_id), directory, files, job)
    return [api_path(root, directory / n) for n in names]


def _download_into(o, ds, directory: Path, files=None, job: Job | None = None) -> list[str]:
    perm_id = ds.permId
    listing = dataset_files(ds)
    if files is not None:
        wanted = set(files)
        unknown = wanted - {f["path"] for f in listing}
        if unknown:
            raise ApiError(404, f"Dataset {perm_id} has no file {sorted(unknown)[0]!r}.")
        listing = [f for f in listing if f["path"] in wanted]
    if not listing:
        raise ApiError(404, f"Dataset {perm_id} has no files.")
    names = [f["path"].rsplit("/", 1)[-1] for f in listing]
    for name in names:
        try:
            check_name(name, "file name")
        except ValueError as e:
            raise ApiError(400, f"Dataset {perm_id}: {e}") from e
    total = sum(f["size"] for f in listing)
    limit = max_bytes()
    if total > limit:
        raise ApiError(
            413, f"Dataset {perm_id} has {_mb(total)} of files; the panel fetches at most "
            f"{_mb(limit)} (OPENBIS_LAB_MAX_BYTES). Use pyBIS in a notebook for more.",
        )  # fmt: skip
    free = shutil.disk_usage(directory).free
    if total > free:
        raise ApiError(507, f"Not enough space: {_mb(total)} needed, {_mb(free)} free.")
    staging = Path(tempfile.mkdtemp(prefix=".openbis-download-", dir=directory))
    if job is not None:
        job.total, job.staging = total, staging
    try:
        ds.download(
            files=[f["path"] for f in listing], destination=str(staging), wait_until_finished=True
        )
        fetched = [staging / ds.permId / f["path"] for f in listing]
        for f, path in zip(listing, fetched, strict=True):
            if not path.is_file() or path.stat().st_size != f["size"]:
                raise ApiError(502, f"{f['path']} of dataset {perm_id} did not arrive whole.")
        return [place(p, directory, n) for p, n in zip(fetched, names, strict=True)]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_jobs: dict[str, Job] = {}
KEEP_JOBS = 200  # finished downloads the panel may still ask about


def start_download(root, perm_id, folder, files=None) -> Job:
    job = Job(perm_id, folder)
    finished = [k for k, j in _jobs.items() if j.state != "running"]
    for key in finished[: max(0, len(finished) - KEEP_JOBS)]:
        del _jobs[key]
    _jobs[job.id] = job

    def run():
        try:
            job.files = with_openbis(download_dataset, perm_id, root, folder, files, job)
            job.done, job.state = job.total, "done"
        except ApiError as e:
            job.state, job.error = "failed", {"status": e.status, "reason": e.text}
        except Exception as e:  # never lose a job silently
            job.state, job.error = "failed", {"status": 500, "reason": scrub(str(e))}

    _executor.submit(run)
    return job


# --- environment ---------------------------------------------------------------------------------


# where R and Octave find their packages (Debian's R and Octave; the user's own libraries first)
R_LIBRARIES = ("~/R/*-library/*", "/usr/local/lib/R/site-library", "/usr/lib/R/site-library",
               "/usr/lib/R/library")  # fmt: skip
OCTAVE_PACKAGES = ("~/.local/share/octave/**", "/usr/share/octave/packages")
OCTAVE_VERSIONS = "/usr/share/octave/[0-9]*"  # one folder per installed version


_environment_cache: dict[tuple, dict] = {}


def current_environment() -> dict:
    """This server's environment: its image (name, label, id), Python, R and Octave with their
    packages. Read from files (package metadata and DESCRIPTION files), no program runs; read
    again when a folder packages are installed into has changed (every save asks for it)."""
    folders = [*sys.path, *(d for lib in R_LIBRARIES + OCTAVE_PACKAGES for d in _glob(lib))]
    key = tuple((d, os.stat(d).st_mtime_ns) for d in folders if os.path.isdir(d))
    if key not in _environment_cache:
        _environment_cache.clear()
        _environment_cache[key] = _read_environment()
    return copy.deepcopy(_environment_cache[key])


def _read_environment() -> dict:
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[_canonical(name)] = dist.version
    image = os.environ.get("JUPYTER_IMAGE") or os.environ.get("JUPYTER_IMAGE_SPEC") or ""
    r_packages = _descriptions(R_LIBRARIES, "*/DESCRIPTION", "Package")
    octave_packages = _descriptions(OCTAVE_PACKAGES, "*/packinfo/DESCRIPTION", "Name")
    octave = sorted((Path(p).name for p in _glob(OCTAVE_VERSIONS)), key=_version_key)
    return {
        "python": platform.python_version(),
        "image": image,
        "label": os.environ.get(contract.ENV_ENVIRONMENT, ""),
        "imageId": os.environ.get(contract.ENV_IMAGE_ID, ""),
        "packages": packages,
        # R's version is its base package's
        "r": {"version": r_packages.pop("base", ""), "packages": r_packages}
        if r_packages
        else None,
        "octave": {"version": octave[-1], "packages": octave_packages} if octave else None,
    }


def _glob(pattern: str) -> list[str]:
    import glob

    return sorted(glob.glob(os.path.expanduser(pattern), recursive=True))


def _version_key(version: str) -> list:
    return [int(p) if p.isdigit() else 0 for p in re.split(r"[.-]", version)]


def _descriptions(libraries, pattern: str, name_field: str) -> dict[str, str]:
    """{package: version} from the DESCRIPTION files below ``libraries``; the first library
    holding a package wins, as in R's .libPaths() and Octave's pkg."""
    found: dict[str, str] = {}
    for library in libraries:
        for directory in _glob(library):
            for path in sorted(Path(directory).glob(pattern)):
                fields = dict(
                    line.split(":", 1)
                    for line in path.read_text(errors="replace").splitlines()
                    if ":" in line and not line[:1].isspace()
                )
                name, version = fields.get(name_field, "").strip(), fields.get("Version", "")
                if name and name not in found:
                    found[name] = version.strip()
    return found


def record_environment(model: dict, **_) -> None:
    """jupyter_server's pre-save hook: every notebook saved carries the environment it was
    saved in (``metadata.openbis.environment``), also when only the ``.ipynb`` is uploaded."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        metadata_ = model["content"].setdefault("metadata", {})
        metadata_.setdefault("openbis", {})["environment"] = current_environment()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_files(env: dict) -> dict[str, str]:
    """The files saved with an analysis (as the notebook templates save them)."""
    requirements = "".join(f"{n}=={v}\n" for n, v in sorted(env["packages"].items()))
    files = {"runtime.txt": f"python-{env['python']}\n", "requirements.txt": requirements}
    if env.get("image"):
        files["image.txt"] = env["image"] + "\n"
    return files


def saved_environment(notebook: Path) -> dict | None:
    """The environment a notebook was saved in: its metadata (every save records it), else
    the files the panel saved beside it before notebooks carried it."""
    try:
        recorded = json.loads(notebook.read_text())["metadata"]["openbis"]["environment"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if isinstance(recorded, dict) and isinstance(recorded.get("packages"), dict):
        return recorded
    return read_environment(notebook.parent)


def read_environment(directory: Path) -> dict | None:
    if not (directory / "requirements.txt").is_file():
        return None
    packages = {}
    for line in (directory / "requirements.txt").read_text(errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        if not sep:
            name, sep, version = line.partition(" @ ")
        packages[_canonical(name.strip())] = version.strip() or "?"
    runtime = directory / "runtime.txt"
    image = directory / "image.txt"
    python = runtime.read_text().strip().removeprefix("python-") if runtime.is_file() else ""
    return {
        "python": python,
        "image": image.read_text().strip() if image.is_file() else "",
        "packages": packages,
    }


def _all_packages(env: dict) -> dict[str, str]:
    """Python's packages, then R and Octave with theirs (``R``, ``R ggplot2``, ``Octave``, ...)."""
    packages = dict(env["packages"])
    for language, key in (("R", "r"), ("Octave", "octave")):
        if env.get(key):
            packages[language] = env[key]["version"]
            packages.update({f"{language} {n}": v for n, v in env[key]["packages"].items()})
    return packages


def _image(env: dict) -> str:
    """The image as a person reads it: label, name, the start of its id."""
    label, name, ident = env.get("label"), env.get("image", ""), env.get("imageId", "")
    shown = f"{label} ({name})" if label else name
    return f"{shown} {ident.removeprefix('sha256:')[:12]}".strip() if ident else shown


def compare_environments(saved: dict, current: dict) -> dict:
    # a record from before R and Octave were recorded (the panel's requirements.txt) says
    # nothing of them: compared on what it recorded, not shown every R package as new
    current = {k: v for k, v in current.items() if k not in ("r", "octave") or k in saved}
    old, new = _all_packages(saved), _all_packages(current)
    same_image = (
        saved.get("imageId") == current.get("imageId")
        if saved.get("imageId") and current.get("imageId")
        else saved.get("image") == current.get("image")
    )
    return {
        "python": None
        if saved["python"] == current["python"]
        else [saved["python"], current["python"]],
        "image": None if same_image else [_image(saved), _image(current)],
        "changed": [
            {"name": n, "saved": old[n], "current": new[n]}
            for n in sorted(old.keys() & new.keys())
            if old[n] != new[n]
        ],
        "missing": [{"name": n, "saved": old[n]} for n in sorted(old.keys() - new.keys())],
        "added": [{"name": n, "current": new[n]} for n in sorted(new.keys() - old.keys())],
    }


def environment_report(root, notebook: str) -> dict:
    """For a notebook in a re-opened analysis folder: the dataset, the environment it was
    made in, this one, and the differences. ``{"dataset": None}`` for other notebooks."""
    path = resolve(root, notebook, what="notebook")
    marker = path.parent / MARKER
    if not marker.is_file():
        return {"dataset": None}
    info = json.loads(marker.read_text())
    # as it came from openBIS (reopen keeps it: saves since then record this server's)
    saved = info.pop("environment", None) or read_environment(path.parent)
    current = current_environment()
    brief = ("python", "image", "label", "imageId")
    return {
        "dataset": info,
        "saved": {k: saved.get(k, "") for k in brief} if saved else None,
        "current": {k: current[k] for k in brief},
        "differences": compare_environments(saved, current) if saved else None,
    }


# --- saving a notebook -------------------------------------------------------------------------


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def notebook_context(root, notebook: str) -> dict:
    """What the ELN (or a filled template) wrote into a notebook: the result dataset's owner,
    parents, name, notes and history id, to prefill "Save to openBIS"."""
    path = resolve(root, notebook, what="notebook")
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ApiError(400, f"{notebook!r} is not a readable notebook.") from e
    values, owner = {}, None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    value = _literal(node.value)
                    if value is not None:
                        values[target.id] = value
            if isinstance(node, ast.keyword) and node.arg in ("sample", "experiment"):
                call = node.value
                if isinstance(call, ast.Call) and call.args:
                    ident = _literal(call.args[0])
                    if isinstance(ident, str):
                        owner = {"kind": node.arg, "id": ident}
    if values.get("ownerId") and values.get("ownerType") in ("object", "experiment"):
        kind = "sample" if values["ownerType"] == "object" else "experiment"
        owner = {"kind": kind, "id": values["ownerId"]}
    parents = values.get("resultDatasetParents", values.get("datasetPermIds", []))
    text = {k: values.get(k) for k in ("resultDatasetName", "resultDatasetNotes")}
    return {
        "fromEln": bool(nb.get("metadata", {}).get("autogenerated_by_openbis")),
        "owner": owner,
        "parents": [p for p in parents if isinstance(p, str)] if isinstance(parents, list) else [],
        "name": text["resultDatasetName"] if isinstance(text["resultDatasetName"], str) else "",
        "notes": text["resultDatasetNotes"] if isinstance(text["resultDatasetNotes"], str) else "",
        "historyId": str(values.get("resultDatasetHistoryId") or ""),
    }


def save_dataset(o, root, request: dict) -> dict:
    """Upload the notebook, its HTML copy, the chosen files and the environment as a new
    dataset owned by a sample (object) or experiment (collection), with parents."""
    if not isinstance(request, dict):
        raise ApiError(400, "The body must be a JSON object.")
    notebook = resolve(root, request.get("notebook", ""), what="notebook")
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise ApiError(400, f"{request.get('notebook')!r} is not a notebook in your home.")
    extra = []
    for name in request.get("files") or []:
        path = resolve(root, name, what="file")
        if not path.is_file():
            raise ApiError(400, f"{name!r} is not a file.")
        extra.append(path)
    owner = request.get("owner") or {}
    kind, ident = owner.get("kind"), owner.get("id")
    if kind not in ("sample", "experiment") or not isinstance(ident, str) or not ident:
        raise ApiError(400, "Pick an object or a collection to attach the dataset to.")
    parents = request.get("parents") or []
    if not isinstance(parents, list) or not all(
        isinstance(p, str) and contract.PERM_ID.match(p) for p in parents
    ):
        raise ApiError(400, "Parents must be a list of dataset permIds.")
    dataset_type = str(request.get("type") or ANALYSIS_TYPE).upper()
    names = [notebook.name] + [p.name for p in extra]
    if len(set(names)) != len(names):
        raise ApiError(400, "Two chosen files have the same name; rename one.")
    total = sum(p.stat().st_size for p in [notebook, *extra])
    limit = max_bytes()
    if total > limit:
        raise ApiError(
            413, f"The files have {_mb(total)}; a dataset saved from the panel holds at most "
            f"{_mb(limit)} (OPENBIS_LAB_MAX_BYTES).",
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="openbis-save-") as tmp:
        upload = [str(notebook), *map(str, extra)]
        if request.get("html", True):
            import nbformat
            from nbconvert import HTMLExporter

            html, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
            html_path = Path(tmp, notebook.name + ".html")
            html_path.write_text(html, encoding="utf-8")
            upload.append(str(html_path))
        if request.get("environment", True):
            for name, text in environment_files(current_environment()).items():
                if name in names:
                    raise ApiError(400, f"{name!r} is saved with the environment; rename yours.")
                Path(tmp, name).write_text(text)
                upload.append(str(Path(tmp, name)))
        props = {"$name": str(request.get("name") or notebook.stem)}
        if request.get("notes"):
            props["notes"] = str(request["notes"])
        if request.get("historyId") and dataset_type == ANALYSIS_TYPE:
            props["$history_id"] = str(request["historyId"])
        ds = o.new_dataset(
            type=dataset_type, parents=parents, files=upload, props=props, **{kind: ident}
        )
        ds.save()
    return {"permId": ds.permId, "files": [Path(p).name for p in upload]}


# --- re-opening a saved analysis -----------------------------------------------------------------


def get_analysis(o, perm_id):
    """The ANALYSIS_NOTEBOOK dataset ``perm_id``, or an ApiError saying why not. openBIS
    answers a dataset the user may not see exactly like one that does not exist."""
    check_perm_id(perm_id)
    try:
        ds = o.get_dataset(perm_id)
    except ValueError as e:
        if "no such dataset" not in str(e):
            raise
        raise ApiError(
            404, f"openBIS has no dataset {perm_id} that you may see: it does not exist, or "
            "you have no permission for it.",
        ) from e  # fmt: skip
    if ds.type.code != ANALYSIS_TYPE:
        raise ApiError(
            400, f"Dataset {perm_id} is of type {ds.type.code}, not {ANALYSIS_TYPE}: only saved "
            "analyses can be re-opened. Download its files from the openBIS panel instead.",
        )  # fmt: skip
    return ds


def reopen(o, root, perm_id: str) -> dict:
    ds = get_analysis(o, perm_id)
    listing = dataset_files(ds)
    notebooks = [f["path"] for f in listing if f["path"].endswith(".ipynb")]
    if not notebooks:
        raise ApiError(400, f"Dataset {perm_id} holds no notebook.")
    root = Path(root).resolve()
    # a new folder first, so that the download's own checks run before anything is visible
    staging = Path(tempfile.mkdtemp(prefix=".openbis-reopen-", dir=root))
    try:
        written = _download_into(o, ds, staging)
        parents = [p["permId"]["permId"] for p in ds.data.get("parents") or []]
        info = {
            "permId": perm_id,
            "type": ds.type.code,
            "name": (ds.data.get("properties") or {}).get("$NAME") or "",
            "parents": parents,
            "files": written,
            "reopened": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        notebook = staging / notebooks[0].rsplit("/", 1)[-1]
        environment = saved_environment(notebook)
        (staging / MARKER).write_text(json.dumps({**info, "environment": environment}, indent=1))
        folder = make_folder(root, perm_id)  # an empty folder reserves the free name
        os.rename(staging, folder)  # replaces the empty folder at once
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    notebook = notebooks[0].rsplit("/", 1)[-1]
    return {
        "folder": api_path(root, folder),
        "notebook": api_path(root, folder / notebook),
        "dataset": info,
        "environment": environment_report(root, api_path(root, folder / notebook)),
    }


def reopen_dataset(perm_id: str, root_dir: str) -> dict:
    """``POST reopen`` (the panel's Re-open and the hub's link), blocking; raises ApiError:
    the analysis lands in ``~/<permId>/`` (or ``<permId> 2``...)."""
    return with_openbis(reopen, root_dir, perm_id)


# --- handlers ------------------------------------------------------------------------------


class _Handler(APIHandler):
    auth_resource = "contents"

    @property
    def root(self) -> str:
        return self.settings["server_root_dir"]

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, ApiError):
            reason = exc.text
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        else:
            reason = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"reason": reason}))

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as e:
            raise ApiError(400, "The body must be JSON.") from e
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object.")
        return body

    async def run(self, fn, *args):
        """``fn(*args)`` in a worker thread: pyBIS blocks."""
        return await IOLoop.current().run_in_executor(_executor, fn, *args)

    def answer(self, result, status=200):
        self.set_status(status)
        self.finish(json.dumps(result))


class StatusHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self):
        self.answer(await self.run(status))


class ChildrenHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self):
        kind = self.get_query_argument("kind", "root")
        ident = self.get_query_argument("id", "")
        self.answer(await self.run(lambda: {"items": with_openbis(children, kind, ident)}))


class SearchHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self):
        query = self.get_query_argument("q", "")
        self.answer(await self.run(lambda: {"items": with_openbis(search, query)}))


class DownloadsHandler(_Handler):
    @web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        perm_id, folder = check_perm_id(body.get("permId")), body.get("folder", "")
        resolve(self.root, folder, what="folder")  # bad paths fail now, not in the job
        job = start_download(self.root, perm_id, folder, body.get("files"))
        self.answer(job.as_dict(), 202)


class DownloadHandler(_Handler):
    @web.authenticated
    @authorized
    def get(self, job_id):
        job = _jobs.get(job_id)
        if job is None:
            raise ApiError(404, "No such download.")
        self.answer(job.as_dict())


class NotebookContextHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self):
        path = self.get_query_argument("path", "")
        self.answer(await self.run(notebook_context, self.root, path))


class DatasetsHandler(_Handler):
    @web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        self.answer(await self.run(with_openbis, save_dataset, self.root, body), 201)


class ReopenHandler(_Handler):
    @web.authenticated
    @authorized
    async def post(self):
        perm_id = self.json_body().get("permId")
        self.answer(await self.run(reopen_dataset, perm_id, self.root), 201)


class EnvironmentHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self):
        path = self.get_query_argument("path", "")
        self.answer(await self.run(environment_report, self.root, path))


class HomeHandler(_Handler):
    @web.authenticated
    @authorized
    def get(self):
        self.answer(usage(self.root))  # one statvfs: the status bar asks every minute


def handlers(base_url: str) -> list:
    """The panel's API, for ``serverapp.web_app.add_handlers``."""
    api = url_path_join(base_url, "openbis/api")
    return [
        (f"{api}/status", StatusHandler),
        (f"{api}/children", ChildrenHandler),
        (f"{api}/search", SearchHandler),
        (f"{api}/downloads", DownloadsHandler),
        (f"{api}/downloads/([0-9a-f]{{32}})", DownloadHandler),
        (f"{api}/notebook-context", NotebookContextHandler),
        (f"{api}/datasets", DatasetsHandler),
        (url_path_join(base_url, contract.REOPEN_PATH), ReopenHandler),
        (f"{api}/environment", EnvironmentHandler),
        (f"{api}/home", HomeHandler),
    ]
