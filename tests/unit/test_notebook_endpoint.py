"""The notebook endpoint's pure parts: the ELN's query strings, notebook checks, landing URLs."""

import json

import nbformat
import pytest
from openbis_jupyterhub.hub.auth import _without_token
from openbis_jupyterhub.hub.handlers import NotebookEndpoint, check_notebook, eln_query_arguments
from tornado import web


def test_eln_query_keeps_plus_and_decodes_escapes():
    args = eln_query_arguments("token=a+b&folder=My%20Folder&filename=1+1%3D2.ipynb&test=True")
    assert args == {
        "token": "a+b",
        "folder": "My Folder",
        "filename": "1+1=2.ipynb",
        "test": "True",
    }


def test_eln_query_first_value_wins_and_bad_utf8_is_refused():
    assert eln_query_arguments("a=1&a=2")["a"] == "1"
    with pytest.raises(web.HTTPError) as e:
        eln_query_arguments("folder=%ff")
    assert e.value.status_code == 400


def test_valid_notebooks_pass():
    check_notebook(nbformat.writes(nbformat.v4.new_notebook()).encode())


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"TEST", "not valid JSON"),
        (b"[]", "format v4"),
        (json.dumps({"nbformat": 3}).encode(), "format v4"),
        (
            json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": "x"}).encode(),
            "valid v4",
        ),
    ],
)
def test_malformed_notebooks_get_400(body, words):
    with pytest.raises(web.HTTPError) as e:
        check_notebook(body)
    assert e.value.status_code == 400
    assert words in e.value.log_message % e.value.args


def test_allowed_origins_default_to_openbis():
    endpoint = NotebookEndpoint()
    assert endpoint.allowed_origins("https://openbis.example.org:8443/openbis") == {
        "https://openbis.example.org:8443"
    }
    endpoint.eln_origins = ["https://eln.example.org/"]
    assert endpoint.allowed_origins("https://openbis.example.org") == {"https://eln.example.org"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/user/JDoe/lab?token=T&x=1", "/user/JDoe/lab?x=1"),
        ("/hub/home?token=T", "/hub/home"),
        ("/user/JDoe/notebooks/a%20b.ipynb", "/user/JDoe/notebooks/a%20b.ipynb"),
    ],
)
def test_landing_urls_never_carry_the_token(url, expected):
    assert _without_token(url) == expected
