"""Local accounts: a YAML users file with salted scrypt password hashes.

    users:
      alice:
        password: scrypt$16384$8$1$<salt b64>$<hash b64>
        uid: 20001           # the UNIX identity the session runs as (adduser assigns one)
        gid: 20001
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from hebi_common.atomic import atomic_write
from hebi_common.config import RootConfig
from hebi_common.errors import UserError
from hebi_common.identity import Identity, check_username

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AccountError(UserError):
    """A users file or an account that cannot be used; the message is for the admin."""


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


def password_stamp(account: Account) -> str:
    """A short fingerprint of the account's password hash, kept with each login: a login made before
    the password changed no longer matches, so changing a password ends every existing login."""
    return _stamp(account.password)


@lru_cache(maxsize=4096)
def _stamp(stored_hash: str) -> str:
    return hashlib.sha256(stored_hash.encode()).hexdigest()[:16]


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

    def unix_ids(self, name: str, uid: int | None, gid: int | None, uid_range: tuple[int, int]) -> dict[str, int]:
        """The uid and gid of account ``name``: the ones given, else the ones it has, else the lowest id
        of ``uid_range`` that no other account has as uid or gid (a new account's own group). A uid
        belongs to one account only: its session's files are that account's on the host."""
        others = [a for n, a in self._load().items() if n != name]
        current = self._load().get(name)
        uid = uid if uid is not None else (current.uid if current else None)
        if uid is None:
            used = {a.uid for a in others} | {a.gid for a in others}
            low, high = uid_range
            uid = next((n for n in range(low, high + 1) if n not in used), None)
            if uid is None:
                raise AccountError(f"no free uid left in gateway.uid_range {low}-{high}: give one with --uid")
            gid = uid if gid is None else gid
        owner = next((a.name for a in others if a.uid == uid), None)
        if owner:
            raise AccountError(f"uid {uid} is already {owner}'s: every account needs its own")
        if uid < 1 or (gid is not None and gid < 1):
            raise AccountError("uid and gid 0 are root's: a session never runs as root")
        gid = gid if gid is not None else (current.gid if current and current.gid is not None else uid)
        return {"uid": uid, "gid": gid}

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
        self._write(accounts)

    def remove(self, name: str) -> bool:
        """Remove account ``name`` (False: there was none). Its files and uid stay the host's business."""
        accounts = dict(self._load())
        if accounts.pop(name, None) is None:
            return False
        self._write(accounts)
        return True

    def _write(self, accounts: dict[str, Account]) -> None:
        document = {"users": {n: {k: v for k, v in a.__dict__.items() if k != "name" and v not in (None, "", [])}
                              for n, a in sorted(accounts.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, 0o600, text=True) as out:
            yaml.safe_dump(document, out, sort_keys=False)
        self._cache = None


def make_root_folders(roots: Mapping[str, RootConfig], account: Account) -> tuple[list[str], list[str]]:
    """Create the account's root folders (``session.roots`` with ``{user}`` and ``{home}`` expanded), so
    a new user's session finds every root. A folder made here is 0700 when the root is writable (and, run
    as root, handed to the account's uid/gid); one that exists is left as it is.

    Returns (lines saying where each root is, problems for the admin)."""
    done, problems = [], []
    for name, root in sorted(roots.items()):
        if "{home}" in root.path and not account.home:
            problems.append(f"{name}: {root.path} names {{home}}, but {account.name} has no home (--home)")
            continue
        folder = Path(root.path.replace("{user}", account.name).replace("{home}", account.home))
        if folder.is_dir():
            done.append(f"{name}: {folder}")
            continue
        try:
            folder.mkdir(parents=True)
            if root.writable:
                os.chmod(folder, 0o700)
            if os.geteuid() == 0 and account.uid is not None:
                os.chown(folder, account.uid, -1 if account.gid is None else account.gid)
        except OSError as err:
            problems.append(f"{name}: cannot create {folder}: {err.strerror}")
            continue
        done.append(f"{name}: {folder} (created)")
    return done, problems
