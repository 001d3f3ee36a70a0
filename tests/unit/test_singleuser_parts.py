"""What runs in user servers, without a server: session hints, openbis-data's arguments,
the token file, Docker names of odd openBIS user ids."""

import stat

import pytest
from dockerspawner.dockerspawner import DockerSpawner
from openbis_jupyterhub import contract
from openbis_jupyterhub.singleuser import save_token
from openbis_jupyterhub.singleuser.data_cli import parse_args
from openbis_jupyterhub.singleuser.session_hint import is_session_expired


@pytest.mark.parametrize(
    "message",
    [
        "Session is no longer valid. Please log in again.",
        "Your session expired, please log in again",
        "Session token JDoe-1 is invalid: user is not logged in.",
        "Session no longer available",
    ],
)
def test_expired_sessions_are_recognised(message):
    assert is_session_expired(ValueError(message))


def test_other_errors_are_not_expired_sessions():
    assert not is_session_expired(ValueError("No such dataset: 20240115093000000-1"))
    assert not is_session_expired(RuntimeError("Session is no longer valid"))


def test_openbis_data_arguments():
    args = parse_args(["save", "--object", "/S/P/O1", "--parents", "A,B,", "a.ipynb"])
    assert (args.object, args.parents, args.files) == ("/S/P/O1", ["A", "B"], ["a.ipynb"])
    with pytest.raises(SystemExit):
        parse_args(["save", "--object", "X", "--experiment", "Y", "a.ipynb"])


def test_saved_token_is_private_and_replaced_whole(tmp_path):
    url = "https://openbis.example.org"
    path = save_token(url, "first", tmp_path)
    save_token(url, "second", tmp_path)
    assert path == contract.token_path(url, tmp_path)
    assert path.read_text() == "second"  # no newline: pyBIS reads the text as it is
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize(
    ("user_id", "escaped"),
    [("jdoe", "jdoe"), ("JDoe", "-4a-44oe"), ("a.b@c", "a-2eb-40c")],
)
def test_docker_names_keep_case_apart(user_id, escaped):
    # what the README promises: volumes jupyterhub-user-{escaped}, never shared by JDoe and jdoe
    assert DockerSpawner(user=None).escape(user_id) == escaped
