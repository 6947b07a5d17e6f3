"""Who is logged in: an opaque random cookie value per login, kept server-side so logout really ends it.

Each login record holds the identity the login method found (user, uid, gid, home, groups), the admin
flag and the method's own check value, so a request needs neither the users file nor the identity
provider. Only a SHA-256 of each cookie value is stored (logins.json, 0600), so the file alone lets
nobody in. It survives a gateway restart, so users stay logged in across one, whatever the method.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from hebi_common.atomic import atomic_write
from hebi_common.identity import Identity, IdentityError


@dataclass(frozen=True)
class Login:
    identity: Identity
    #: The login method that made it (auth.Authenticator.name): a record of another method is not believed.
    method: str
    admin: bool = False
    #: The method's check value: for local accounts the password stamp (accounts.password_stamp).
    stamp: str = ""
    #: When it ends (seconds since the epoch): gateway.login_max_age, or earlier (an OIDC token's expiry).
    expires: float = 0.0

    @property
    def user(self) -> str:
        return self.identity.user

    def to_json(self) -> dict:
        return {"identity": self.identity.to_json(), "method": self.method, "admin": self.admin,
                "stamp": self.stamp, "expires": self.expires}

    @classmethod
    def from_json(cls, data: dict) -> Login:
        return cls(identity=Identity.from_json(data["identity"]), method=str(data["method"]),
                   admin=bool(data.get("admin", False)), stamp=str(data.get("stamp", "")),
                   expires=float(data["expires"]))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginStore:
    def __init__(self, path: str | os.PathLike[str], max_age: int):
        self.path = Path(path)
        self.max_age = max_age
        self._logins: dict[str, Login] = {}
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            stored = {}
        for digest, data in stored.items() if isinstance(stored, dict) else ():
            try:
                self._logins[digest] = Login.from_json(data)
            except (KeyError, TypeError, ValueError, IdentityError):
                # A record of an older gateway (no identity) or a damaged one: that user logs in again.
                continue
        self._drop_expired()

    def create(self, login: Login) -> str:
        """Store ``login`` (its expiry capped at max_age from now) and return the cookie value for it."""
        token = secrets.token_urlsafe(32)
        cap = time.time() + self.max_age
        expires = min(login.expires, cap) if login.expires else cap
        self._logins[_digest(token)] = Login(login.identity, login.method, login.admin, login.stamp, expires)
        self._drop_expired()
        self._save()
        return token

    def find(self, token: str | None) -> Login | None:
        if not token or len(token) > 128:
            return None
        login = self._logins.get(_digest(token))
        if login is None or login.expires < time.time():
            return None
        return login

    def end(self, token: str | None) -> None:
        if token and self._logins.pop(_digest(token), None) is not None:
            self._save()

    def end_all(self, user: str) -> None:
        self._logins = {k: v for k, v in self._logins.items() if v.user != user}
        self._save()

    def logins(self) -> list[Login]:
        """Every current login (for the admin's view)."""
        now = time.time()
        return [login for login in self._logins.values() if login.expires >= now]

    def _drop_expired(self) -> None:
        now = time.time()
        self._logins = {k: v for k, v in self._logins.items() if v.expires >= now}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, 0o600, text=True) as out:
            json.dump({k: v.to_json() for k, v in self._logins.items()}, out)
