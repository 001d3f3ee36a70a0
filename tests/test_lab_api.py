"""The JupyterLab panel's server API (hub/openbis_jupyterhub/lab_api.py).

A real `jupyter lab` process with our server extension, the openBIS double as a process and
the unmodified pyBIS 1.37.5 in between: browse, search, download, save with parents,
re-open and re-run; and the bad cases (unknown permId, no permission, expired session,
path tricks, files too large), each with a clear JSON reason and nothing written.
No Docker.
"""

import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from openbis_jupyterhub.singleuser import lab_api
from openbis_jupyterhub.singleuser.session_hint import HINT

from openbis_double import seed
from tests.support.eln import eln_notebook

UNKNOWN = "20240115093000000-999"


def files_in(home: Path) -> dict:
    """Every file and folder below home except pyBIS's token, hidden ones included."""
    return {
        str(p.relative_to(home)): (p.stat().st_size if p.is_file() else None)
        for p in home.rglob("*")
        if ".pybis" not in p.parts and ".ipynb_checkpoints" not in p.parts
        and ".local" not in p.parts and ".jupyter" not in p.parts
    }  # fmt: skip


def wait_for(lab, job, timeout=60):
    deadline = time.monotonic() + timeout
    seen = []
    while job["state"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = lab.api("GET", f"downloads/{job['id']}").json()
        seen.append(job["bytesDone"])
    return job, seen


def download(lab, perm_id, folder="", **extra):
    answer = lab.api("POST", "downloads", json={"permId": perm_id, "folder": folder, **extra})
    assert answer.status_code == 202, answer.text
    return wait_for(lab, answer.json())[0]


def write_notebook(path: Path, cells, **metadata):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata.update(
        {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        **metadata,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return nb


ANALYSIS = [
    "import csv\nrows = list(csv.DictReader(open('measurements.csv')))\nlen(rows)",
    "mean = sum(float(r['signal_mv']) for r in rows) / len(rows)\nprint(f'mean {mean:.4f}')",
    "open('result.txt', 'w').write(f'{mean:.6f}\\n')",
]


def run(path: Path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=60, resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    return [c.outputs for c in nb.cells]


# --- status ----------------------------------------------------------------------------------


def test_status_names_user_and_openbis_and_needs_jupyter_auth(lab):
    answer = lab.api("GET", "status")
    assert answer.status_code == 200
    assert answer.json() == {
        "url": lab.double.url,
        "host": "127.0.0.1",
        "user": "JDoe",
        "valid": True,
        "hint": None,
    }
    import requests

    assert requests.get(f"{lab.url}openbis/api/status", timeout=10).status_code == 403


def test_expired_session_says_what_to_do_everywhere_and_writes_nothing(lab):
    lab.double.control.expire(user="JDoe")
    before = files_in(lab.home)
    status = lab.api("GET", "status").json()
    assert status["valid"] is False and status["user"] is None and status["hint"] == HINT
    for path in ("children?kind=root", f"search?q={seed.SAMPLE}"):
        answer = lab.api("GET", path)
        assert answer.status_code == 401 and answer.json() == {"reason": HINT}
    job = download(lab, seed.CSV_DATASET)
    assert job["state"] == "failed" and job["error"] == {"status": 401, "reason": HINT}
    (lab.home / "nb.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    save = lab.api(
        "POST",
        "datasets",
        json={"notebook": "nb.ipynb", "owner": {"kind": "sample", "id": seed.SAMPLE}},
    )
    assert save.status_code == 401 and save.json() == {"reason": HINT}
    reopen = lab.api("POST", "reopen", json={"permId": seed.CSV_DATASET})
    assert reopen.status_code == 401 and reopen.json() == {"reason": HINT}
    (lab.home / "nb.ipynb").unlink()
    assert files_in(lab.home) == before
    assert lab.double.control.created_datasets() == []
    # the hub's next token works at once, without a restart
    lab.sign_in()
    assert lab.api("GET", "status").json()["valid"] is True


# --- browse and search -------------------------------------------------------------------------


def test_browse_the_hierarchy_level_by_level(lab):
    def level(kind, ident=""):
        answer = lab.api("GET", "children", params={"kind": kind, "id": ident})
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    assert [(n["kind"], n["code"]) for n in level("root")] == [("space", "LAB")]
    projects = level("space", "LAB")
    assert [(n["kind"], n["id"]) for n in projects] == [("project", seed.PROJECT)]
    exps = level("project", seed.PROJECT)
    assert [(n["kind"], n["id"], n["type"], n["name"]) for n in exps] == [
        ("experiment", seed.EXPERIMENT, "COLLECTION", "Experiment 1")
    ]
    inside = level("experiment", seed.EXPERIMENT)
    assert [(n["kind"], n["id"], n["type"], n["name"]) for n in inside] == [
        ("sample", seed.SAMPLE, "EXPERIMENTAL_STEP", "Sample 1"),
        ("dataset", seed.CSV_DATASET, "RAW_DATA", "Temperature log"),
        ("dataset", seed.IMAGE_DATASET, "RAW_DATA", "Micrograph"),
    ]
    assert [(n["id"], n["name"]) for n in level("sample", seed.SAMPLE)] == [
        (seed.BINARY_DATASET, "Spectrum")
    ]
    assert level("dataset", seed.CSV_DATASET) == [
        {
            "kind": "file",
            "id": f"{seed.CSV_DATASET}/{seed.CSV_PATH}",
            "path": seed.CSV_PATH,
            "size": len(seed.CSV_BYTES),
        }
    ]
    bad = lab.api("GET", "children", params={"kind": "planet", "id": "x"})
    assert bad.status_code == 400 and "Unknown kind" in bad.json()["reason"]
    missing = lab.api("GET", "children", params={"kind": "dataset", "id": UNKNOWN})
    assert missing.status_code == 404 and UNKNOWN in missing.json()["reason"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("SAMPLE1", {("sample", seed.SAMPLE)}),
        ("sample1", {("sample", seed.SAMPLE)}),
        (seed.SAMPLE, {("sample", seed.SAMPLE)}),
        (seed.SAMPLE_PERM_ID, {("sample", seed.SAMPLE)}),
        (seed.CSV_DATASET, {("dataset", seed.CSV_DATASET)}),
        ("EXP1", {("experiment", seed.EXPERIMENT)}),
        ("log", {("dataset", seed.CSV_DATASET)}),  # part of the name "Temperature log"
        ("spectrum", {("dataset", seed.BINARY_DATASET)}),
        ("Sample 1", {("sample", seed.SAMPLE)}),
        ("nothing like it", set()),
    ],
)
def test_search_by_code_perm_id_or_name(lab, query, expected):
    answer = lab.api("GET", "search", params={"q": query})
    assert answer.status_code == 200, answer.text
    assert {(n["kind"], n["id"]) for n in answer.json()["items"]} == expected


def test_search_refuses_wildcards(lab):
    answer = lab.api("GET", "search", params={"q": "*"})
    assert answer.status_code == 400 and "'*'" in answer.json()["reason"]


# --- download --------------------------------------------------------------------------------


def test_download_into_the_current_folder_never_overwrites(lab):
    (lab.home / "data").mkdir()
    (lab.home / "data" / "measurements.csv").write_text("mine")
    job = download(lab, seed.CSV_DATASET, "data")
    assert job["state"] == "done", job
    assert job["files"] == ["data/measurements 2.csv"]
    assert job["bytesDone"] == job["bytesTotal"] == len(seed.CSV_BYTES)
    assert (lab.home / "data" / "measurements.csv").read_text() == "mine"
    assert (lab.home / "data" / "measurements 2.csv").read_bytes() == seed.CSV_BYTES
    assert download(lab, seed.CSV_DATASET, "data")["files"] == ["data/measurements 3.csv"]
    assert sorted(p.name for p in (lab.home / "data").iterdir()) == [
        "measurements 2.csv",
        "measurements 3.csv",
        "measurements.csv",
    ]  # fmt: skip  (no staging folder left behind)


def test_download_of_a_large_file_reports_progress(lab):
    answer = lab.api("POST", "downloads", json={"permId": seed.BINARY_DATASET, "folder": ""})
    job, seen = wait_for(lab, answer.json())
    assert job["state"] == "done", job
    assert job["bytesTotal"] == len(seed.BINARY_BYTES) and job["files"] == ["spectrum.bin"]
    assert (lab.home / "spectrum.bin").read_bytes() == seed.BINARY_BYTES
    assert seen == sorted(seen)  # progress only goes forward


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"permId": UNKNOWN, "folder": ""}, 404, "no such dataset"),
        ({"permId": "../../etc", "folder": ""}, 400, "is not a dataset permId"),
        ({"permId": seed.CSV_DATASET, "folder": "../"}, 400, "hidden or '..'"),
        ({"permId": seed.CSV_DATASET, "folder": "/etc"}, 400, "relative to your home"),
        ({"permId": seed.CSV_DATASET, "folder": ".pybis"}, 400, "hidden"),
        ({"permId": seed.CSV_DATASET, "folder": "outside"}, 400, "leads outside your home"),
        ({"permId": seed.CSV_DATASET, "folder": "missing"}, 400, "does not exist"),
        ({"permId": seed.CSV_DATASET, "folder": "", "files": ["x"]}, 404, "has no file 'x'"),
    ],
)
def test_bad_downloads_say_why_and_write_nothing(lab, tmp_path, body, status, words):
    link = lab.home / "outside"
    if not link.is_symlink():
        link.symlink_to(tmp_path)
    before = files_in(lab.home)
    answer = lab.api("POST", "downloads", json=body)
    if answer.status_code == 202:  # checked in the background: the job reports it
        job, _ = wait_for(lab, answer.json())
        assert job["state"] == "failed"
        error = job["error"]
    else:
        error = {"status": answer.status_code, **answer.json()}
    assert error["status"] == status and words in error["reason"], error
    assert files_in(lab.home) == before
    assert list(tmp_path.iterdir()) == []


def test_unknown_download_job_is_404(lab):
    answer = lab.api("GET", "downloads/" + "0" * 32)
    assert answer.status_code == 404 and answer.json() == {"reason": "No such download."}


# --- pure functions, in this process (limits are read at each call) ------------------------------


@pytest.fixture
def pybis_here(lab, monkeypatch):
    """lab_api's functions in the test process, connected like the server: same home."""
    monkeypatch.setenv("HOME", str(lab.home))
    monkeypatch.setenv("OPENBIS_URL", lab.double.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", lab.double.ca_file)
    return lab


def test_too_large_downloads_and_saves_are_refused_before_anything_moves(pybis_here, monkeypatch):
    lab = pybis_here
    monkeypatch.setenv("OPENBIS_LAB_MAX_BYTES", str(1024 * 1024))
    before = files_in(lab.home)
    with pytest.raises(lab_api.ApiError) as failure:
        lab_api.with_openbis(lab_api.download_dataset, seed.BINARY_DATASET, lab.home, "")
    assert failure.value.status == 413 and "at most 1.0 MB" in failure.value.text
    assert files_in(lab.home) == before
    assert lab.double.control.request_count("fastDownload:startDownloadSession") == 0

    write_notebook(lab.home / "big" / "big.ipynb", ["1"])
    (lab.home / "big" / "big.bin").write_bytes(b"\0" * (1024 * 1024 + 1))
    request = {
        "notebook": "big/big.ipynb",
        "files": ["big/big.bin"],
        "owner": {"kind": "sample", "id": seed.SAMPLE},
    }
    with pytest.raises(lab_api.ApiError) as failure:
        lab_api.with_openbis(lab_api.save_dataset, lab.home, request)
    assert failure.value.status == 413 and "OPENBIS_LAB_MAX_BYTES" in failure.value.text
    assert lab.double.control.request_count("session_workspace_file_upload") == 0


def test_free_names_number_like_the_eln_also_without_extension():
    assert list(lab_api.free_names("a.csv"))[:3] == ["a.csv", "a 2.csv", "a 3.csv"]
    assert list(lab_api.free_names("README"))[:3] == ["README", "README 2", "README 3"]
    assert list(lab_api.free_names("x.tar.gz"))[:2] == ["x.tar.gz", "x.tar 2.gz"]


def test_environment_comparison_names_the_differences(tmp_path):
    saved = {"python": "3.11.2", "image": "singleuser:1", "packages": {"a": "1", "b": "2"}}
    (tmp_path / "requirements.txt").write_text("a==1\nB==2\n# comment\n-e git+x#egg=c\n")
    (tmp_path / "runtime.txt").write_text("python-3.11.2\n")
    (tmp_path / "image.txt").write_text("singleuser:1\n")
    assert lab_api.read_environment(tmp_path) == saved
    now = {"python": "3.12.1", "image": "singleuser:1", "packages": {"a": "1.1", "c": "3"}}
    assert lab_api.compare_environments(saved, now) == {
        "python": ["3.11.2", "3.12.1"],
        "image": None,
        "changed": [{"name": "a", "saved": "1", "current": "1.1"}],
        "missing": [{"name": "b", "saved": "2"}],
        "added": [{"name": "c", "current": "3"}],
    }


# --- notebook context (prefill) -----------------------------------------------------------------


def test_context_of_an_eln_notebook_prefills_target_and_parents(lab):
    datasets = [
        {"permId": {"permId": seed.CSV_DATASET}, "experiment": {"permId": {"permId": "E"}}},
        {"permId": {"permId": seed.BINARY_DATASET}, "sample": {"permId": {"permId": "S"}}},
    ]
    owner = {"@type": "as.dto.sample.Sample", "identifier": {"identifier": seed.SAMPLE}}
    nb = eln_notebook(datasets, owner, "eln.ipynb")
    (lab.home / "eln.ipynb").write_text(json.dumps(nb))
    answer = lab.api("GET", "notebook-context", params={"path": "eln.ipynb"})
    assert answer.status_code == 200, answer.text
    context = answer.json()
    assert context["fromEln"] is True
    assert context["owner"] == {"kind": "sample", "id": seed.SAMPLE}
    assert context["parents"] == [seed.CSV_DATASET, seed.BINARY_DATASET]
    assert context["name"] == "Name your dataset!" and context["historyId"]

    owner = {"@type": "as.dto.experiment.Experiment", "identifier": {"identifier": "/A/B/C"}}
    (lab.home / "eln2.ipynb").write_text(json.dumps(eln_notebook([], owner, "eln2.ipynb")))
    context = lab.api("GET", "notebook-context", params={"path": "eln2.ipynb"}).json()
    assert context["owner"] == {"kind": "experiment", "id": "/A/B/C"} and context["parents"] == []

    plain = lab.api("GET", "notebook-context", params={"path": "../x.ipynb"})
    assert plain.status_code == 400


def test_context_of_a_filled_template(lab):
    template = Path(__file__).parent.parent / "notebook_templates" / "analysis_python3.ipynb"
    nb = json.loads(template.read_text())
    i = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
    filled = (
        f"datasetPermIds = [{seed.CSV_DATASET!r}]\nownerType = 'experiment'\n"
        f"ownerId = {seed.EXPERIMENT!r}\nresultDatasetName = 'Run 1'\n"
    )
    nb["cells"].insert(i + 1, nbformat.v4.new_code_cell(filled))
    (lab.home / "t.ipynb").write_text(json.dumps(nb))
    context = lab.api("GET", "notebook-context", params={"path": "t.ipynb"}).json()
    assert context["owner"] == {"kind": "experiment", "id": seed.EXPERIMENT}
    assert context["parents"] == [seed.CSV_DATASET] and context["name"] == "Run 1"
    assert context["fromEln"] is False


# --- save, re-open, re-run ----------------------------------------------------------------------


def save(lab, **request):
    return lab.api("POST", "datasets", json=request)


def test_save_with_parents_html_outputs_and_environment(lab):
    write_notebook(lab.home / "work" / "analysis.ipynb", ["print('hello')"])
    (lab.home / "work" / "result.csv").write_text("a,b\n1,2\n")
    answer = save(
        lab,
        notebook="work/analysis.ipynb",
        files=["work/result.csv"],
        owner={"kind": "sample", "id": seed.SAMPLE},
        parents=[seed.CSV_DATASET, seed.BINARY_DATASET],
        name="My analysis",
        notes="first try",
        historyId="h-1",
    )
    assert answer.status_code == 201, answer.text
    perm_id = answer.json()["permId"]
    [created] = lab.double.control.created_datasets()
    assert created["permId"] == perm_id and created["type"] == "ANALYSIS_NOTEBOOK"
    assert created["registrator"] == "JDoe"
    assert created["owner"] == {
        "sample": {"identifier": seed.SAMPLE, "permId": seed.SAMPLE_PERM_ID}
    }
    assert created["parents"] == [seed.CSV_DATASET, seed.BINARY_DATASET]
    assert created["properties"] == {
        "$NAME": "My analysis",
        "NOTES": "first try",
        "$HISTORY_ID": "h-1",
    }
    names = {f["path"].rsplit("/", 1)[-1]: f for f in created["files"]}
    assert set(names) == {
        "analysis.ipynb", "analysis.ipynb.html", "result.csv", "runtime.txt", "requirements.txt",
    }  # fmt: skip
    html = lab.double.control.file(perm_id, names["analysis.ipynb.html"]["path"]).decode()
    assert "hello" in html and "<html" in html
    requirements = lab.double.control.file(perm_id, names["requirements.txt"]["path"]).decode()
    assert "pybis==1.37.5" in requirements
    assert sorted(p.name for p in (lab.home / "work").iterdir()) == ["analysis.ipynb", "result.csv"]

    to_collection = save(
        lab, notebook="work/analysis.ipynb", owner={"kind": "experiment", "id": seed.EXPERIMENT},
        html=False, environment=False,
    )  # fmt: skip
    assert to_collection.status_code == 201, to_collection.text
    created = lab.double.control.created_datasets()[-1]
    assert created["owner"] == {"experiment": {"identifier": seed.EXPERIMENT}}
    assert [f["path"] for f in created["files"]] == ["original/analysis.ipynb"]
    assert created["properties"] == {"$NAME": "analysis"}


@pytest.mark.parametrize(
    "change, status, words",
    [
        ({"notebook": ".pybis/127.0.0.1.token"}, 400, "hidden"),
        ({"notebook": "../../etc/passwd"}, 400, "hidden or '..'"),
        ({"notebook": "work/missing.ipynb"}, 400, "is not a notebook"),
        ({"files": ["/etc/passwd"]}, 400, "relative to your home"),
        ({"files": [".pybis/127.0.0.1.token"]}, 400, "hidden"),
        ({"files": ["work"]}, 400, "is not a file"),
        ({"files": ["other/n.ipynb"]}, 400, "same name"),
        ({"owner": None}, 400, "Pick an object or a collection"),
        ({"owner": {"kind": "space", "id": "LAB"}}, 400, "Pick an object or a collection"),
        ({"parents": ["../x"]}, 400, "list of dataset permIds"),
        ({"parents": [UNKNOWN]}, 404, UNKNOWN),
        ({"owner": {"kind": "sample", "id": "/LAB/PROJ/NOPE"}}, 404, "NOPE"),
    ],
)
def test_bad_saves_say_why_and_create_nothing(lab, change, status, words):
    write_notebook(lab.home / "work" / "n.ipynb", ["1"])
    write_notebook(lab.home / "other" / "n.ipynb", ["2"])
    request = {"notebook": "work/n.ipynb", "owner": {"kind": "sample", "id": seed.SAMPLE}}
    answer = save(lab, **{**request, **change})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["reason"]
    assert lab.double.control.created_datasets() == []


def test_save_without_permission_is_403_and_creates_nothing(lab):
    lab.double.control.observer("JDoe")
    write_notebook(lab.home / "n.ipynb", ["1"])
    answer = save(lab, notebook="n.ipynb", owner={"kind": "sample", "id": seed.SAMPLE})
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith("openBIS refused: you have no permission")
    assert lab.double.control.created_datasets() == []


def test_reopen_and_rerun_gives_identical_outputs(lab):
    # an analysis made with the panel: input downloaded next to the notebook, run, saved
    (lab.home / "study").mkdir()
    assert download(lab, seed.CSV_DATASET, "study")["files"] == ["study/measurements.csv"]
    write_notebook(lab.home / "study" / "analysis.ipynb", ANALYSIS)
    first = run(lab.home / "study" / "analysis.ipynb")
    answer = save(
        lab, notebook="study/analysis.ipynb", files=["study/result.txt"],
        owner={"kind": "sample", "id": seed.SAMPLE}, parents=[seed.CSV_DATASET],
    )  # fmt: skip
    perm_id = answer.json()["permId"]

    reopened = lab.api("POST", "reopen", json={"permId": perm_id})
    assert reopened.status_code == 201, reopened.text
    info = reopened.json()
    assert info["folder"] == perm_id and info["notebook"] == f"{perm_id}/analysis.ipynb"
    assert info["dataset"]["parents"] == [seed.CSV_DATASET]
    assert info["environment"]["differences"] == {
        "python": None, "image": None, "changed": [], "missing": [], "added": [],
    }  # fmt: skip
    folder = lab.home / perm_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".openbis-dataset.json", "analysis.ipynb", "analysis.ipynb.html", "result.txt",
         "runtime.txt", "requirements.txt"]
    )  # fmt: skip
    # the parent it names, fetched the same way, then the same outputs
    assert download(lab, seed.CSV_DATASET, info["folder"])["state"] == "done"
    assert run(folder / "analysis.ipynb") == first

    # again: a new folder, never the old one; the banner reads what changed
    again = lab.api("POST", "reopen", json={"permId": perm_id}).json()
    assert again["folder"] == f"{perm_id} 2"
    requirements = lab.home / again["folder"] / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("pybis==1.37.5", "pybis==1.36.0"))
    report = lab.api("GET", "environment", params={"path": again["notebook"]}).json()
    assert report["dataset"]["permId"] == perm_id
    assert report["differences"]["changed"] == [
        {"name": "pybis", "saved": "1.36.0", "current": "1.37.5"}
    ]
    plain = lab.api("GET", "environment", params={"path": "study/analysis.ipynb"}).json()
    assert plain == {"dataset": None}


@pytest.mark.parametrize(
    "perm_id, status, words",
    [
        (UNKNOWN, 404, f"openBIS has no dataset {UNKNOWN} that you may see"),
        (seed.CSV_DATASET, 400, "is of type RAW_DATA, not ANALYSIS_NOTEBOOK"),
        ("../etc", 400, "is not a dataset permId"),
        (f"{seed.CSV_DATASET}\n", 400, "is not a dataset permId"),
        (None, 400, "is not a dataset permId"),
    ],
)
def test_bad_reopens_say_why_and_write_nothing(lab, perm_id, status, words):
    before = files_in(lab.home)
    answer = lab.api("POST", "reopen", json={"permId": perm_id})
    assert answer.status_code == status and words in answer.json()["reason"], answer.text
    assert files_in(lab.home) == before


def test_an_analysis_without_a_notebook_is_not_reopened(pybis_here, tmp_path):
    lab = pybis_here
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")

    def save_without_notebook(o):
        ds = o.new_dataset(
            type="ANALYSIS_NOTEBOOK", sample=seed.SAMPLE, files=[str(tmp_path / "table.csv")]
        )
        ds.save()
        return ds.permId

    perm_id = lab_api.with_openbis(save_without_notebook)
    before = files_in(lab.home)
    answer = lab.api("POST", "reopen", json={"permId": perm_id})
    assert answer.status_code == 400
    assert answer.json()["reason"] == f"Dataset {perm_id} holds no notebook."
    assert files_in(lab.home) == before


def test_reopen_dataset_runs_outside_a_request(pybis_here):
    lab = pybis_here
    write_notebook(lab.home / "n.ipynb", ["1 + 1"])
    perm_id = save(lab, notebook="n.ipynb", owner={"kind": "sample", "id": seed.SAMPLE}).json()[
        "permId"
    ]
    result = lab_api.reopen_dataset(perm_id, str(lab.home))
    assert result["notebook"] == f"{perm_id}/n.ipynb"
    assert (lab.home / perm_id / "n.ipynb").is_file()


# --- no token anywhere ---------------------------------------------------------------------------


def test_the_server_log_holds_no_openbis_token(lab_server):
    """Runs last in this module: every token of it (sign-ins, expired ones) was used by now."""
    log = lab_server.log_path.read_text()
    assert "openbis/api" in log  # the log is where the requests were logged
    assert not re.search(r"-\d{15}x[0-9A-F]{32}", log)
    assert os.stat(lab_server.home / ".pybis" / "127.0.0.1.token").st_mode & 0o077 == 0


# --- the widgets template -------------------------------------------------------------------------


def test_widgets_template_runs_and_saves_its_result(pybis_here):
    """notebook_templates/widgets_python3.ipynb filled like the hub's template endpoint does,
    run in a Python kernel: the widgets show the CSV and the binary file, and the notebook
    is saved as an ANALYSIS_NOTEBOOK with both datasets as parents."""
    from openbis_jupyterhub.hub import templates

    lab = pybis_here
    template = Path(__file__).parent.parent / "notebook_templates" / "widgets_python3.ipynb"
    params = {
        "fileName": "widgets_python3.ipynb",
        "datasetPermIds": [seed.CSV_DATASET, seed.BINARY_DATASET],
        "ownerType": "object",
        "ownerId": seed.SAMPLE,
        "resultDatasetName": "Widgets look",
        "resultDatasetNotes": "",
        "resultDatasetHistoryId": "",
    }
    nb = templates.render(nbformat.read(template, as_version=4), params)
    checks = (
        "print(table.shape, columns.value)\n"
        "pick.value = list(files)[1]\n"
        "print(table, files[pick.value], columns.options)"
    )
    save_at = next(i for i, c in enumerate(nb.cells) if "## Saving the results" in c.source)
    nb.cells.insert(save_at, nbformat.v4.new_code_cell(checks))
    folder = lab.home / "widgets"
    folder.mkdir()
    nbformat.write(nb, folder / "widgets_python3.ipynb")
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(folder)}}).execute()

    widget_cell = next(c for c in nb.cells if "widgets.VBox" in c.source)
    views = [
        o
        for o in widget_cell.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert views, widget_cell.outputs
    check = "".join(o.get("text", "") for o in nb.cells[save_at].outputs)
    assert "(200, 3) ('signal_mv',)" in check
    assert f"None {seed.BINARY_DATASET}/{seed.BINARY_PATH} ()" in check
    [created] = lab.double.control.created_datasets()
    assert created["parents"] == [seed.CSV_DATASET, seed.BINARY_DATASET]
    assert created["properties"]["$NAME"] == "Widgets look"


def test_download_and_save_with_an_openbis_of_api_version_3_5(
    openbis_double_legacy, monkeypatch, tmp_path
):
    """Older openBIS: pyBIS downloads by plain GET and uploads through the query v1 service."""
    from openbis_jupyterhub.singleuser import save_token

    double = openbis_double_legacy
    double.control.reset()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPENBIS_URL", double.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", double.ca_file)
    save_token(double.url, double.control.login("JDoe", "jdoe-password"), home=tmp_path)
    written = lab_api.with_openbis(lab_api.download_dataset, seed.BINARY_DATASET, tmp_path, "")
    assert written == ["spectrum.bin"]
    assert (tmp_path / "spectrum.bin").read_bytes() == seed.BINARY_BYTES
    assert double.control.request_count("datastore_server GET") >= 1
    write_notebook(tmp_path / "n.ipynb", ["1"])
    request = {
        "notebook": "n.ipynb",
        "owner": {"kind": "experiment", "id": seed.EXPERIMENT},
        "parents": [seed.BINARY_DATASET],
    }
    perm_id = lab_api.with_openbis(lab_api.save_dataset, tmp_path, request)["permId"]
    [created] = double.control.created_datasets()
    assert created["permId"] == perm_id and created["parents"] == [seed.BINARY_DATASET]
    assert lab_api.with_openbis(lab_api.reopen, tmp_path, perm_id)["folder"] == perm_id
