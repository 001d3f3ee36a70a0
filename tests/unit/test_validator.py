"""Folder and file names from the ELN: inside the home, visible, ordinary."""

import pytest
from openbis_jupyterhub.validator import (
    check_folder,
    check_name,
    check_notebook_filename,
    numbered_names,
)


@pytest.mark.parametrize("name", ["a.ipynb", "My Analysis (v2).ipynb", "ü 1+1.ipynb"])
def test_ordinary_notebook_names_pass(name):
    assert check_notebook_filename(name) == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "empty"),
        ("../x.ipynb", "slash"),
        ("a/b.ipynb", "slash"),
        (".hidden.ipynb", "starts with a dot"),
        ("..", "starts with a dot"),
        ("a\\b.ipynb", "backslash"),
        ("a\x00.ipynb", "control character"),
        ("a\nb.ipynb", "control character"),
        ("x" * 250 + ".ipynb", "longer than 255 bytes"),
        ("notes.txt", "does not end in .ipynb"),
    ],
)
def test_bad_notebook_names_say_why(name, words):
    with pytest.raises(ValueError, match=words):
        check_notebook_filename(name)


def test_length_counts_bytes_not_characters():
    check_name("é" * 127)
    with pytest.raises(ValueError, match="255 bytes"):
        check_name("é" * 128)


@pytest.mark.parametrize(
    ("folder", "parts"),
    [("", []), ("/", None), ("a", ["a"]), ("a/b/", ["a", "b"]), ("20240115 run", ["20240115 run"])],
)
def test_folders(folder, parts):
    if parts is None:
        with pytest.raises(ValueError, match="absolute"):
            check_folder(folder)
    else:
        assert check_folder(folder) == parts


@pytest.mark.parametrize("folder", ["../x", "a/../../b", "a//b", "/etc", "a/.ssh"])
def test_folders_cannot_leave_the_home(folder):
    with pytest.raises(ValueError):
        check_folder(folder)


def test_numbered_names_follow_the_eln():
    names = numbered_names("Analysis.ipynb")
    assert [next(names) for _ in range(3)] == [
        "Analysis.ipynb",
        "Analysis 2.ipynb",
        "Analysis 3.ipynb",
    ]
    assert len(list(numbered_names("a.ipynb"))) == 9999  # bounded: never an endless loop
