"""Local accounts: a YAML users file with salted scrypt password hashes.

    users:
      alice:
        password: scrypt$16384$8$1$<salt b64>$<hash b64>
        uid: 1001            # optional: the UNIX identity handed to the session
        gid: 1001
        home: /home/alice
        groups: [savu-users]

The file is written whole to a temporary file and renamed, mode 0600.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hebi_common.atomic import atomic_write
from hebi_common.identity import Identity, check_username

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AccountError(Exception):
    pass


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to check wrong user names against, so a login takes as long whether or not the user exists.
_DUMMY_HASH = hash_password("hebi-dummy-password", salt=b"\0" * 16)


@dataclass
class Account:
    name: str
    password: str
    uid: int | None = None
    gid: int | None = None
    home: str = ""
    groups: list[str] = field(default_factory=list)

    def identity(self) -> Identity:
        return Identity(user=self.name, uid=self.uid, gid=self.gid, home=self.home, groups=tuple(self.groups))


class UsersFile:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._cache: tuple[float, dict[str, Account]] | None = None

    def _load(self) -> dict[str, Account]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
            accounts = {name: Account(name=check_username(name), **fields)
                        for name, fields in (data.get("users") or {}).items()}
        except (yaml.YAMLError, TypeError, AttributeError, ValueError) as err:
            raise AccountError(f"{self.path}: malformed users file: {err}") from None
        self._cache = (mtime, accounts)
        return accounts

    def authenticate(self, name: str, password: str) -> Account | None:
        account = self._load().get(name)
        ok = verify_password(password, account.password if account else _DUMMY_HASH)
        return account if account and ok else None

    def get(self, name: str) -> Account | None:
        return self._load().get(name)

    def names(self) -> list[str]:
        return sorted(self._load())

    def set_password(self, name: str, password: str, **fields) -> None:
        check_username(name)
        if len(password) < 8:
            raise AccountError("passwords have at least 8 characters")
        accounts = dict(self._load())
        current = accounts.get(name)
        account = Account(name=name, password=hash_password(password),
                          **{k: v for k, v in ((current.__dict__ if current else {}) | fields).items()
                             if k not in ("name", "password")})
        accounts[name] = account
        document = {"users": {n: {k: v for k, v in a.__dict__.items() if k != "name" and v not in (None, "", [])}
                              for n, a in sorted(accounts.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, 0o600, text=True) as out:
            yaml.safe_dump(document, out, sort_keys=False)
        self._cache = None
