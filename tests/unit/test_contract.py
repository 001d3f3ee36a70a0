"""The hub/user-server contract: who may hand over, the Authorization header, the token's place."""

from pathlib import Path

from openbis_jupyterhub import contract


def test_only_the_handover_service_is_accepted():
    assert contract.is_handover({"kind": "service", "name": contract.HANDOVER_SERVICE})
    # the server's owner, a user named like the service, other services, nobody
    assert not contract.is_handover({"kind": "user", "name": "JDoe"})
    assert not contract.is_handover({"kind": "user", "name": contract.HANDOVER_SERVICE})
    assert not contract.is_handover({"kind": "service", "name": "idle-culler"})
    assert not contract.is_handover({})
    assert not contract.is_handover(None)


def test_authorization_is_a_jupyterhub_token_header():
    assert contract.authorization("abc") == {"Authorization": "token abc"}
    assert contract.HANDOVER_SCOPES == ["access:servers"]


def test_no_credential_travels_in_the_environment():
    names = {name for name in dir(contract) if name.startswith("ENV_")}
    # the openBIS server, its CA, the home's bound, the label and id of the server's image:
    # none a secret
    assert names == {
        "ENV_OPENBIS_URL", "ENV_OPENBIS_CA_CERT", "ENV_HOME_SIZE", "ENV_ENVIRONMENT", "ENV_IMAGE_ID"
    }  # fmt: skip


def test_token_path_is_where_pybis_looks(tmp_path):
    path = contract.token_path("https://openbis.example.org:8443/openbis", tmp_path)
    assert path == tmp_path / ".pybis" / "openbis.example.org.token"
    assert contract.token_path("https://x.org").parent == Path.home() / ".pybis"
