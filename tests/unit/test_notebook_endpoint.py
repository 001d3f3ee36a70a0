"""The notebook endpoint's pure parts: the ELN's query strings, notebook checks, landing URLs."""

import json

import nbformat
import pytest
from openbis_jupyterhub.contract import PERM_ID
from openbis_jupyterhub.hub.auth import _without_token
from openbis_jupyterhub.hub.handlers import (
    NotebookEndpoint,
    ReopenAnalysisHandler,
    check_notebook,
    eln_query_arguments,
)
from openbis_jupyterhub.hub.handover import _reason_of
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


def test_the_rerun_link_is_registered_with_the_sign_in():
    from openbis_jupyterhub.hub.auth import OpenBISAuthenticator

    routes = dict(OpenBISAuthenticator(openbis_url="https://o.example.org").get_handlers(None))
    assert routes["/openbis-notebook/open/(.*)"] is ReopenAnalysisHandler


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("20240115093000000-4", True),
        ("20240115093000000-4123", True),
        ("2024011509300000-4", False),
        ("20240115093000000-4/..", False),
        ("../20240115093000000-4", False),
        ("20240115093000000-4\n", False),
        ("20240115093000000-", False),
        ("", False),
    ],
)
def test_rerun_link_and_panel_take_dataset_perm_ids_only(text, ok):
    assert bool(PERM_ID.match(text)) is ok


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"reason": "openBIS has no dataset X"}', "openBIS has no dataset X"),
        (b'{"message": "x", "reason": null}', None),
        (b'{"reason": ""}', None),
        (b"<html>404 : Not Found</html>", None),
        (b"[]", None),
    ],
)
def test_a_user_servers_reason_is_taken_when_it_gave_one(body, reason):
    assert _reason_of(body) == reason
