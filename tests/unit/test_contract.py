"""The hub/user-server contract: signing, the Authorization header, the token's place."""

from pathlib import Path

from openbis_jupyterhub import contract

KEY = bytes.fromhex("11" * 32)


def test_secret_is_per_user_and_stable():
    alice = contract.handover_secret(KEY, "alice")
    assert alice == contract.handover_secret(KEY, "alice")  # survives hub restarts
    assert alice != contract.handover_secret(KEY, "Alice")  # user ids are case-sensitive
    assert alice != contract.handover_secret(bytes.fromhex("22" * 32), "alice")
    assert len(alice) == 64 and int(alice, 16) >= 0


def test_authorization_round_trip():
    secret = contract.handover_secret(KEY, "JDoe")
    header = contract.authorization(secret)["Authorization"]
    assert contract.is_authorized(header, secret)


def test_authorization_refuses_other_users_and_empty_secrets():
    mine = contract.handover_secret(KEY, "JDoe")
    theirs = contract.authorization(contract.handover_secret(KEY, "alice"))["Authorization"]
    assert not contract.is_authorized(theirs, mine)
    assert not contract.is_authorized("", mine)
    assert not contract.is_authorized(f"Bearer {mine[:-1]}", mine)
    # a server started without a secret accepts nothing, not even an empty header
    assert not contract.is_authorized("Bearer ", "")


def test_token_path_is_where_pybis_looks(tmp_path):
    path = contract.token_path("https://openbis.example.org:8443/openbis", tmp_path)
    assert path == tmp_path / ".pybis" / "openbis.example.org.token"
    assert contract.token_path("https://x.org").parent == Path.home() / ".pybis"
