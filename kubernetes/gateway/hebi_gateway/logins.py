"""Who is logged in: an opaque random cookie value per login, kept server-side so logout really ends it.

Only a SHA-256 of each cookie value is stored (logins.json, 0600), so the file alone lets nobody in.
It survives a gateway restart, so users stay logged in across one.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import NamedTuple

from hebi_common.atomic import atomic_write


class Login(NamedTuple):
    user: str
    #: accounts.password_stamp of the password the login was made with.
    stamp: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginStore:
    def __init__(self, path: str | os.PathLike[str], max_age: int):
        self.path = Path(path)
        self.max_age = max_age
        self._logins: dict[str, dict] = {}
        try:
            self._logins = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._logins = {}
        self._drop_expired()

    def create(self, user: str, stamp: str) -> str:
        token = secrets.token_urlsafe(32)
        self._logins[_digest(token)] = {"user": user, "stamp": stamp, "expires": time.time() + self.max_age}
        self._drop_expired()
        self._save()
        return token

    def find(self, token: str | None) -> Login | None:
        if not token or len(token) > 128:
            return None
        login = self._logins.get(_digest(token))
        if login is None or login["expires"] < time.time():
            return None
        return Login(login["user"], login.get("stamp", ""))

    def end(self, token: str | None) -> None:
        if token and self._logins.pop(_digest(token), None) is not None:
            self._save()

    def end_all(self, user: str) -> None:
        self._logins = {k: v for k, v in self._logins.items() if v["user"] != user}
        self._save()

    def _drop_expired(self) -> None:
        now = time.time()
        self._logins = {k: v for k, v in self._logins.items() if v["expires"] >= now}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, 0o600, text=True) as out:
            json.dump(self._logins, out)
