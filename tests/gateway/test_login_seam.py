"""The login seam itself: the method is chosen by configuration, login records keep the identity (and
survive a reload), and the rules every method shares: admins, allowed groups, where uid/gid come from."""
from __future__ import annotations

import json
import pwd
import time

import pytest
from aiohttp.test_utils import make_mocked_request

from hebi_common.config import ConfigError, HebiConfig
from hebi_common.identity import Identity
from hebi_gateway.accounts import UsersFile
from hebi_gateway.auth import LoginRefused, make_authenticator
from hebi_gateway.auth.base import Authenticator
from hebi_gateway.auth.web import COOKIE
from hebi_gateway.logins import Login, LoginStore
from hebi_gateway.throttle import LoginThrottle


def seam(tmp_path, **auth) -> Authenticator:
    config = HebiConfig.model_validate({"gateway": {"state_dir": str(tmp_path), "auth": auth}})
    return make_authenticator(config, LoginStore(tmp_path / "logins.json", 3600), UsersFile(tmp_path / "users.yaml"),
                              LoginThrottle(free_per_account=5, free_per_address=20, delay=1.0, max_delay=10.0,
                                            window=60.0, entries=100))


def test_the_method_comes_from_the_configuration(tmp_path):
    assert seam(tmp_path).name == "local"
    assert seam(tmp_path, method="oidc", oidc={"issuer": "http://127.0.0.1:9", "client_id": "c"}).name == "oidc"
    assert seam(tmp_path, method="trusted_header", trusted_header={"trusted_proxies": ["127.0.0.1"]}).name == "trusted_header"
    with pytest.raises(ConfigError, match="issuer and client_id"):
        seam(tmp_path, method="oidc")


def test_a_login_record_keeps_the_identity_across_a_reload_and_ends_by_max_age(tmp_path):
    store = LoginStore(tmp_path / "logins.json", 3600)
    identity = Identity(user="alice", uid=23001, gid=23101, home="/home/alice", groups=("savu-users",))
    token = store.create(Login(identity=identity, method="oidc", admin=True, expires=time.time() + 10 * 3600))
    again = LoginStore(tmp_path / "logins.json", 3600).find(token)
    assert again.identity == identity and again.method == "oidc" and again.admin
    assert again.expires <= time.time() + 3600, "a token's later expiry outlived gateway.login_max_age"
    assert (tmp_path / "logins.json").stat().st_mode & 0o777 == 0o600
    assert token not in (tmp_path / "logins.json").read_text()


def test_a_record_of_an_older_gateway_is_not_believed(tmp_path):
    (tmp_path / "logins.json").write_text(json.dumps({"0" * 64: {"user": "alice", "stamp": "x", "expires": 1e12}}))
    assert LoginStore(tmp_path / "logins.json", 3600).logins() == []


def test_a_record_of_another_method_is_not_believed(tmp_path):
    # A local login made before the gateway was switched to OIDC is not an OIDC login.
    oidc = seam(tmp_path, method="oidc", oidc={"issuer": "http://127.0.0.1:9", "client_id": "c"})
    local = oidc.logins.create(Login(identity=Identity(user="alice"), method="local"))
    mine = oidc.logins.create(Login(identity=Identity(user="alice"), method="oidc"))
    assert oidc.current(make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={local}"})) is None
    assert oidc.current(make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={mine}"})).user == "alice"


def test_admins_are_the_configured_users_and_groups(tmp_path):
    auth = seam(tmp_path, admin_users=["dora"], admin_groups=["hebi-admins"])
    assert auth.is_admin("dora", ()) and auth.is_admin("erin", ("x", "hebi-admins"))
    assert not auth.is_admin("alice", ("savu-users",))


def test_the_allowed_groups_rule(tmp_path):
    auth = seam(tmp_path, allowed_groups=["savu-users", "staff"])
    auth.check_allowed("alice", ("staff",))
    with pytest.raises(LoginRefused, match="savu-users, staff"):
        auth.check_allowed("mallory", ("visitors",))
    seam(tmp_path).check_allowed("anyone", ())  # no rule: everyone the method authenticates


def test_unix_ids_from_claims(tmp_path):
    auth = seam(tmp_path, unix_ids="claims", home_claim="home")
    claims = {"posix_uid": "23001", "home": "/home/alice"}
    identity = auth.unix_identity("alice", ("g",), claims.get)
    assert (identity.uid, identity.gid, identity.home, identity.groups) == (23001, 23001, "/home/alice", ("g",))
    for bad, reason in (({}, "gave no 'posix_uid'"), ({"posix_uid": 0}, "root"), ({"posix_uid": "x"}, "not a number"),
                        ({"posix_uid": 5, "posix_gid": 0}, "root"), ({"posix_uid": -3}, "negative")):
        with pytest.raises(LoginRefused, match=reason):
            auth.unix_identity("alice", (), bad.get)


def test_unix_ids_from_the_systems_user_database(tmp_path):
    auth = seam(tmp_path, unix_ids="passwd")
    entry = pwd.getpwnam("nobody")
    identity = auth.unix_identity("nobody", (), lambda name: None)
    assert (identity.uid, identity.gid, identity.home) == (entry.pw_uid, entry.pw_gid, entry.pw_dir)
    with pytest.raises(LoginRefused, match="no Unix account"):
        auth.unix_identity("no-such-user-here", (), lambda name: None)
    with pytest.raises(LoginRefused, match="root"):
        auth.unix_identity("root", (), lambda name: None)
    assert seam(tmp_path).unix_identity("alice", (), lambda name: 1).uid is None  # unix_ids: none
