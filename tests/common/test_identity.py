"""The identity the gateway hands a session: only the gateway, for this session's user, recently."""
import pytest

from hebi_common.identity import Identity, IdentityError, check_username, sign_identity, verify_identity

SECRET = "session-secret"


def test_a_signed_identity_verifies():
    header = sign_identity(Identity(user="alice", uid=1001, groups=("savu",)), SECRET)
    identity = verify_identity(header, SECRET, "alice")
    assert identity.user == "alice" and identity.uid == 1001 and identity.groups == ("savu",)


@pytest.mark.parametrize("make_header, reason", [
    (lambda: None, "no identity"),
    (lambda: "", "no identity"),
    (lambda: "alice", "does not verify"),
    (lambda: sign_identity(Identity(user="alice"), "another-sessions-secret"), "does not verify"),
    (lambda: sign_identity(Identity(user="bob"), SECRET), "another user"),
    (lambda: sign_identity(Identity(user="alice"), SECRET, now=1_000_000), "stale"),
    (lambda: sign_identity(Identity(user="alice"), SECRET).replace(".", "x.", 1), "does not verify"),
    (lambda: "e30." + sign_identity(Identity(user="alice"), SECRET).split(".")[1], "does not verify"),
])
def test_forged_stale_and_foreign_identities_are_refused(make_header, reason):
    with pytest.raises(IdentityError) as refused:
        verify_identity(make_header(), SECRET, "alice")
    assert reason in str(refused.value)


@pytest.mark.parametrize("name", ["", "Alice", "../x", "a b", "root;rm", "x" * 33, "1abc", "é"])
def test_user_names_that_could_name_the_wrong_thing_are_refused(name):
    with pytest.raises(IdentityError):
        check_username(name)
