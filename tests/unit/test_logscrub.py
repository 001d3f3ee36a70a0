"""Tokens never reach the hub's log, in whatever shape a line carries them."""

import logging

from openbis_jupyterhub.logscrub import ScrubSecrets, install, scrub

SESSION = "JDoe-240115093000123x0123456789abcdef0123456789ABCDEF"


def test_query_parameters_are_scrubbed():
    line = f"GET /hub/login?token={SESSION}&next=/user/JDoe/lab 302"
    assert SESSION not in scrub(line)
    assert "next=/user/JDoe/lab" in scrub(line)


def test_nested_and_encoded_parameters_are_scrubbed():
    line = f"/hub/error?url=%2Fhub%2Flogin%3Ftoken%3D{SESSION}%26next%3D%2F 503"
    assert SESSION not in scrub(line)
    assert "%26next%3D%2F" in scrub(line)


def test_bare_session_tokens_are_scrubbed():
    line = f"openBIS refused {SESSION}: expired"
    assert scrub(line) == "openBIS refused JDoe-240115093000123x[secret]: expired"


def test_personal_access_tokens_in_a_query_are_scrubbed():
    assert "$pat-abc" not in scrub("sessionID=$pat-abc-123")


def test_text_without_secrets_is_unchanged():
    text = "Starting server for JDoe (tokenless, 3 tokens)"
    assert scrub(text) == text


def test_filter_rewrites_records_with_arguments():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "login %s", (f"token={SESSION}",), None
    )
    assert ScrubSecrets().filter(record)
    assert SESSION not in record.getMessage()


def test_install_adds_one_filter_per_handler():
    logger = logging.getLogger("scrub-test")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    install(logger)
    install(logger)
    assert sum(isinstance(f, ScrubSecrets) for f in handler.filters) == 1
