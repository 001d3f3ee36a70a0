"""The openBIS test double against the UNMODIFIED pyBIS 1.37.5 client.

Every other test trusts the double to behave like openBIS for pyBIS; these tests are where
that trust is earned: each drives pyBIS through one action the ELN notebooks and the hub
use, over HTTPS with certificate verification on, and checks what a user would see.
"""

import binascii
import hashlib
import json
import re
import subprocess
import time

import pytest
import requests
from pybis import Openbis

from openbis_double import seed
from openbis_double.protocol import AS_V3, DSS_V3

TOKEN_FORMAT = re.compile(r"^(?P<user>.+)-\d{15}x[0-9A-F]{32}$")
DEAD_SESSION = "Session is no longer valid. Please log in again."


@pytest.fixture(autouse=True)
def pybis_environment(monkeypatch, tmp_path):
    """pyBIS reads and writes ~/.pybis: give every test its own home. Trust the double's
    CA the way user servers do, through REQUESTS_CA_BUNDLE, with verification left on."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def double(clean_openbis_double, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", clean_openbis_double.ca_file)
    return clean_openbis_double


def logged_in(double, user="admin"):
    o = Openbis(double.url)
    o.login(user, double.users[user])
    return o


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# --- sessions ---------------------------------------------------------------------------


def test_login_returns_real_format_token_and_rejects_bad_passwords(double):
    o = Openbis(double.url)
    token = o.login("alice", "alice-password")
    assert TOKEN_FORMAT.match(token)["user"] == "alice"
    assert o.token == token
    assert o.is_session_active()

    with pytest.raises(ValueError, match="login to openBIS failed"):
        Openbis(double.url).login("alice", "wrong-password")
    with pytest.raises(ValueError, match="login to openBIS failed"):
        Openbis(double.url).login("nobody", "alice-password")


def test_openbis_accepts_a_live_token_and_refuses_a_dead_one(double):
    token = double.control.login("alice", "alice-password")
    o = Openbis(double.url, token=token)
    assert o.get_session_info().userName == "alice"

    double.control.expire(token=token)
    with pytest.raises(ValueError, match="This token is no longer valid"):
        Openbis(double.url, token=token)


def test_set_token_with_expired_session_gives_pybis_message(double):
    o = logged_in(double, "JDoe")
    old = o.token
    other = double.control.login("JDoe", "jdoe-password")
    assert double.control.expire(user="JDoe") == 2  # every session of the user dies

    with pytest.raises(ValueError) as failure:
        o.set_token(other)
    assert str(failure.value) == DEAD_SESSION
    assert o.token == old  # pyBIS keeps the previous token when the new one is dead
    assert not o.is_session_active()

    fresh = double.control.login("JDoe", "jdoe-password")
    o.set_token(fresh)
    assert o.token == fresh and o.is_session_active()


def test_session_info_keeps_mixed_case_user_id(double):
    o = logged_in(double, "JDoe")
    info = o.get_session_info()
    assert info.userName == "JDoe"
    assert info.sessionToken == o.token
    assert info.personalAccessTokenSession is False


def test_personal_access_token_session(double):
    pat = double.control.pat("alice")
    assert pat.startswith("$pat-alice-")
    o = Openbis(double.url, token=pat)
    info = o.get_session_info()
    assert info.userName == "alice"
    assert info.personalAccessTokenSession is True
    assert o.get_dataset(seed.CSV_DATASET).permId == seed.CSV_DATASET


def test_idle_sessions_expire_after_the_configured_timeout(openbis_double_factory, monkeypatch):
    short = openbis_double_factory(session_timeout=1)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", short.ca_file)
    o = logged_in(short)
    pat = short.control.pat("admin")
    assert o.is_session_active()
    time.sleep(1.5)
    assert not o.is_session_active()
    with pytest.raises(ValueError, match="no longer available|is invalid"):
        o.get_dataset(seed.CSV_DATASET)
    # Personal access tokens have a validity period, not an idle timeout.
    assert Openbis(short.url, token=pat).is_session_active()


def test_logout_kills_the_token(double):
    o = logged_in(double)
    token = o.token
    o.logout()
    assert not o.is_token_valid(token)
    # pyBIS keeps the old token after logout, so the next call reaches the server and fails.
    with pytest.raises(ValueError, match="is invalid: user is not logged in"):
        o.get_dataset(seed.CSV_DATASET)


# --- reading entities and files ----------------------------------------------------------


def test_get_dataset_and_file_list(double):
    o = logged_in(double)
    ds = o.get_dataset(seed.CSV_DATASET)
    assert ds.permId == seed.CSV_DATASET
    assert ds.type.code == "RAW_DATA"
    assert ds.kind == "PHYSICAL"
    assert ds.experiment.identifier == seed.EXPERIMENT
    assert ds.props["$name"] == "Temperature log"
    assert ds.file_list == [seed.CSV_PATH]

    files = ds.get_files(start_folder="/")
    row = files[files["pathInDataSet"] == seed.CSV_PATH].iloc[0]
    assert not row["isDirectory"]
    assert row["fileSize"] == len(seed.CSV_BYTES)
    assert int(row["crc32Checksum"], 16) == binascii.crc32(seed.CSV_BYTES)
    # Real servers also list the directories "" and "original".
    assert set(files[files["isDirectory"]]["pathInDataSet"]) == {"", "original"}

    binary = o.get_dataset(seed.BINARY_DATASET)
    assert binary.sample.identifier == seed.SAMPLE
    assert binary.file_list == [seed.BINARY_PATH]

    with pytest.raises(ValueError, match="no such dataset"):
        o.get_dataset("20240115093000000-999")


def test_get_experiment_and_object(double):
    o = logged_in(double)
    for ident in (seed.EXPERIMENT, seed.EXPERIMENT_PERM_ID):
        exp = o.get_experiment(ident)
        assert exp.identifier == seed.EXPERIMENT
        assert exp.permId == seed.EXPERIMENT_PERM_ID
        assert exp.type.code == "COLLECTION"
        assert exp.project.identifier == seed.PROJECT
        assert exp.project.permId == seed.PROJECT_PERM_ID
    for ident in (seed.SAMPLE, seed.SAMPLE_PERM_ID):
        obj = o.get_object(ident)
        assert obj.identifier == seed.SAMPLE
        assert obj.permId == seed.SAMPLE_PERM_ID
        assert obj.type.code == "EXPERIMENTAL_STEP"
        assert obj.experiment.identifier == seed.EXPERIMENT
        assert obj.props["$name"] == "Sample 1"
    with pytest.raises(ValueError):
        o.get_object("/LAB/PROJ/MISSING")


def test_search_filters_by_owner_type_space_and_project(double):
    o = logged_in(double)
    by_sample = o.get_datasets(sample=seed.SAMPLE)
    assert list(by_sample.df["permId"]) == [seed.BINARY_DATASET]
    by_experiment = o.get_datasets(experiment=seed.EXPERIMENT)
    assert set(by_experiment.df["permId"]) == {
        seed.CSV_DATASET,
        seed.BINARY_DATASET,
        seed.IMAGE_DATASET,
    }
    assert len(o.get_datasets(type="ANALYSIS_NOTEBOOK")) == 0
    assert list(o.get_samples(space=seed.SPACE).df["identifier"]) == [seed.SAMPLE]
    assert list(o.get_experiments(project=seed.PROJECT).df["identifier"]) == [seed.EXPERIMENT]
    assert len(o.get_samples(space="ELSEWHERE")) == 0


def _download_all(o, destination):
    """What the ELN notebook does: download every file of each seeded dataset."""
    for perm_id, path, expected in (
        (seed.CSV_DATASET, seed.CSV_PATH, seed.CSV_BYTES),
        (seed.BINARY_DATASET, seed.BINARY_PATH, seed.BINARY_BYTES),
    ):
        ds = o.get_dataset(perm_id)
        ds.download(files=ds.file_list, destination=str(destination), wait_until_finished=True)
        got = (destination / perm_id / path).read_bytes()
        assert len(got) == len(expected)
        assert sha256(got) == sha256(expected)


def test_fast_download_is_byte_identical(double, tmp_path):
    _download_all(logged_in(double), tmp_path / "data")
    # api-version 3.7: the fast-download protocol, not the legacy GET.
    assert double.control.request_count("createFastDownloadSession") == 2
    assert double.control.request_count("fastDownload:download") >= 4  # binary spans chunks
    assert double.control.request_count("datastore_server GET") == 0


def test_legacy_get_download_is_byte_identical(openbis_double_legacy, monkeypatch, tmp_path):
    legacy = openbis_double_legacy
    legacy.control.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", legacy.ca_file)
    o = logged_in(legacy)
    assert o.get_server_information().api_version == "3.5"
    _download_all(o, tmp_path / "data")
    assert legacy.control.request_count("datastore_server GET") == 2
    assert legacy.control.request_count("createFastDownloadSession") == 0


def test_ca_path_works_without_environment_and_verification_is_real(double, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    # Trusting the CA by path (pyBIS passes verify_certificates to requests) works...
    o = Openbis(double.url, verify_certificates=double.ca_file)
    o.login("alice", "alice-password")
    assert o.get_session_info().userName == "alice"
    # ...and without trusting it, pyBIS refuses the certificate: verification is not faked.
    with pytest.raises(requests.exceptions.SSLError, match="Certificate validation failed"):
        Openbis(double.url).login("alice", "alice-password")


# --- registering the notebook dataset -------------------------------------------------------


def _write_notebook(folder):
    notebook = folder / "analysis.ipynb"
    html = folder / "analysis.ipynb.html"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4}))
    html.write_bytes(b"<html><body>result \xe2\x9c\x93</body></html>")
    return notebook, html


@pytest.mark.parametrize("owner", ["experiment", "sample"])
def test_new_notebook_dataset_is_registered(double, tmp_path, owner):
    o = logged_in(double, "JDoe")
    notebook, html = _write_notebook(tmp_path)
    owner_arg = {
        "experiment": {"experiment": o.get_experiment(seed.EXPERIMENT)},
        "sample": {"sample": o.get_object(seed.SAMPLE_PERM_ID)},
    }[owner]
    parents = [seed.CSV_DATASET, seed.BINARY_DATASET]
    props = {"$name": "My analysis", "notes": "two\nlines", "$history_id": "hist-42"}

    ds = o.new_dataset(
        type="ANALYSIS_NOTEBOOK",
        parents=parents,
        files=[str(notebook), str(html)],
        props=props,
        **owner_arg,
    ).save()

    [created] = double.control.created_datasets()
    assert ds.permId == created["permId"]
    assert created["type"] == "ANALYSIS_NOTEBOOK"
    assert created["registrator"] == "JDoe"
    if owner == "sample":
        assert created["owner"] == {
            "sample": {"identifier": seed.SAMPLE, "permId": seed.SAMPLE_PERM_ID}
        }
    else:
        assert created["owner"] == {"experiment": {"identifier": seed.EXPERIMENT}}
    assert sorted(created["parents"]) == sorted(parents)
    assert created["properties"] == {
        "$NAME": "My analysis",
        "NOTES": "two\nlines",
        "$HISTORY_ID": "hist-42",
    }
    by_name = {f["path"].rsplit("/", 1)[1]: f for f in created["files"]}
    assert set(by_name) == {"analysis.ipynb", "analysis.ipynb.html"}
    for local in (notebook, html):
        entry = by_name[local.name]
        assert entry["size"] == local.stat().st_size
        assert entry["sha256"] == sha256(local.read_bytes())
        assert double.control.file(ds.permId, entry["path"]) == local.read_bytes()

    # pyBIS reads the new dataset back, as a notebook user would.
    again = o.get_dataset(ds.permId)
    assert again.props["$history_id"] == "hist-42"
    assert sorted(again.parents) == sorted(parents)
    assert sorted(again.file_list) == sorted(f["path"] for f in created["files"])


def test_single_file_lands_in_original_and_big_files_upload_in_slices(double, tmp_path):
    o = logged_in(double)
    big = tmp_path / "big.bin"
    content = hashlib.shake_256(b"big upload").digest(21 * 1024 * 1024 + 17)
    big.write_bytes(content)
    ds = o.new_dataset(
        type="ANALYSIS_NOTEBOOK", experiment=seed.EXPERIMENT, files=[str(big)]
    ).save()
    [created] = double.control.created_datasets()
    assert created["files"] == [
        {"path": "original/big.bin", "size": len(content), "sha256": sha256(content)}
    ]
    assert double.control.request_count("session_workspace_file_upload") == 3  # 10 MB slices
    assert created["owner"] == {"experiment": {"identifier": seed.EXPERIMENT}}
    assert ds.file_list == ["original/big.bin"]


def test_legacy_upload_registers_the_dataset(openbis_double_legacy, monkeypatch, tmp_path):
    legacy = openbis_double_legacy
    legacy.control.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", legacy.ca_file)
    o = logged_in(legacy, "alice")
    notebook, html = _write_notebook(tmp_path)
    ds = o.new_dataset(
        type="ANALYSIS_NOTEBOOK",
        sample=seed.SAMPLE,
        parents=[seed.CSV_DATASET],
        files=[str(notebook), str(html)],
        props={"$name": "legacy", "notes": "", "$history_id": "h-1"},
    ).save()
    [created] = legacy.control.created_datasets()
    assert ds.permId == created["permId"]
    assert created["owner"]["sample"]["identifier"] == seed.SAMPLE
    assert created["parents"] == [seed.CSV_DATASET]
    assert created["properties"] == {"$NAME": "legacy", "$HISTORY_ID": "h-1"}
    assert {f["sha256"] for f in created["files"]} == {
        sha256(notebook.read_bytes()),
        sha256(html.read_bytes()),
    }
    assert legacy.control.request_count("createReportFromAggregationService") == 1


def test_new_dataset_for_an_unknown_type_fails_cleanly(double, tmp_path):
    o = logged_in(double)
    with pytest.raises(ValueError, match="no such dataSetType"):
        o.new_dataset(type="NO_SUCH_TYPE", experiment=seed.EXPERIMENT, files=[])
    assert double.control.created_datasets() == []


# --- protocol errors and the control API -----------------------------------------------------


def test_unknown_method_and_malformed_json_get_json_rpc_errors(double):
    session = requests.Session()
    session.verify = double.ca_file
    token = double.control.login("admin", "admin-password")

    unknown = session.post(
        double.url + AS_V3,
        json.dumps({"method": "frobnicate", "params": [token], "id": "7", "jsonrpc": "2.0"}),
    )
    assert unknown.status_code == 200
    answer = unknown.json()
    assert answer["id"] == "7" and "result" not in answer
    assert "frobnicate" in answer["error"]["message"]

    for body in (b"{not json", b"", b"[1, 2]", b'{"method": 5}', b"\xff\xfe"):
        for endpoint in (AS_V3, DSS_V3):
            resp = session.post(double.url + endpoint, body)
            assert resp.status_code == 200, body
            assert resp.json()["error"]["message"], body

    # Wrong parameter shapes are errors, not crashes.
    for params in ([token, "not-a-list", None], [token, [{"permId": 5}]], [token, [7]]):
        resp = session.post(
            double.url + AS_V3, json.dumps({"method": "getDataSets", "params": params})
        )
        assert resp.status_code == 200
        assert resp.json().get("result", {}) == {} or "error" in resp.json()

    # ...and the server still works afterwards.
    o = Openbis(double.url, token=token)
    assert o.get_session_info().userName == "admin"


def test_control_api_adds_users_and_counts_requests(double):
    double.control.add_user("bench-007", "secret-007")
    assert double.control.request_count("login") == 0
    o = Openbis(double.url)
    o.login("bench-007", "secret-007")
    assert o.get_session_info().userName == "bench-007"
    assert double.control.request_count("login") == 1
    assert double.control.file(seed.CSV_DATASET, seed.CSV_PATH) == seed.CSV_BYTES
    double.control.reset()
    assert not o.is_session_active()
    assert double.control.login("bench-007", "secret-007")  # users survive a reset


# --- the container image ----------------------------------------------------------------------


@pytest.mark.docker
def test_container_image_serves_pybis_on_the_compose_name(
    openbis_double_container, openbis_double_image, tmp_path, monkeypatch
):
    """openbis_double/Dockerfile: verified HTTPS for 127.0.0.1 and for the alias `openbis`."""
    double = openbis_double_container
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(double.ca_file))
    o = Openbis(double.url)
    o.login("JDoe", "jdoe-password")
    ds = o.get_dataset(seed.BINARY_DATASET)
    ds.download(files=ds.file_list, destination=str(tmp_path), wait_until_finished=True)
    got = (tmp_path / seed.BINARY_DATASET / seed.BINARY_PATH).read_bytes()
    assert sha256(got) == sha256(seed.BINARY_BYTES)

    # Another container on the network reaches it as https://openbis:8443, verified.
    probe = (
        "import json, ssl, urllib.request\n"
        "ctx = ssl.create_default_context(cafile='/ca.pem')\n"
        "body = json.dumps({'method': 'login', 'params': ['alice', 'alice-password']})\n"
        f"req = urllib.request.Request('{double.url_in_network}{AS_V3}', data=body.encode())\n"
        "print(json.load(urllib.request.urlopen(req, context=ctx))['result'])\n"
    )
    done = subprocess.run(
        [
            "docker", "run", "--rm", "--network", double.network,
            "-v", f"{double.ca_file}:/ca.pem:ro", "--entrypoint", "python3",
            openbis_double_image, "-c", probe,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert TOKEN_FORMAT.match(done.stdout.strip())["user"] == "alice"
