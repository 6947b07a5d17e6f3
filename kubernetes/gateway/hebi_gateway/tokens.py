"""Scoped API tokens for scripts, like JupyterHub's: a token names its owner, its scopes and its expiry.

A token is shown once, when it is made; the gateway keeps only its SHA-256 (a token has 256 random
bits, so a fast hash is enough: there is nothing to guess) in ``tokens.json`` of its state folder, 0600,
written whole and renamed. ``hebi-gateway token create`` writes the same file while the gateway runs,
so the gateway reads it again whenever it changed.

Scopes (docs/admin.md, "Admin API and tokens"):

- ``self``: the owner's own session (read and stop) and ``/gateway/api/me``;
- ``sessions:read`` / ``sessions:stop``: sessions, every user's for an admin's token, else the owner's own;
- ``users:read`` / ``users:write``: the local accounts (admins only).

A token never reaches a user's session: it is good for /gateway/api/ only.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from hebi_common.atomic import atomic_write
from hebi_common.config import HebiConfig
from hebi_common.errors import UserError
from hebi_common.identity import IdentityError, check_username

SCOPES = ("self", "sessions:read", "sessions:stop", "users:read", "users:write")
#: Scopes about other users than the owner: only an admin's token may hold them.
ADMIN_ONLY_SCOPES = frozenset({"users:read", "users:write"})
PREFIX = "hebi_"
DEFAULT_LIFETIME = 30 * 86400
MAX_LIFETIME = 365 * 86400
#: Tokens kept at most per user, so no script can grow the file without bound.
MAX_PER_USER = 100


@dataclass(frozen=True)
class Token:
    #: A short public name of the token (to list and revoke it), not the secret.
    id: str
    user: str
    scopes: tuple[str, ...]
    #: Whether its owner was an admin when it was made (an admin who is no longer one: revoke the tokens).
    admin: bool
    created: float
    expires: float
    note: str = ""

    def public_json(self) -> dict:
        return {"id": self.id, "user": self.user, "scopes": list(self.scopes), "admin": self.admin,
                "created": self.created, "expires": self.expires, "note": self.note}


def is_admin(config: HebiConfig, user: str, groups: Iterable[str]) -> bool:
    """The admin role: gateway.auth.admin_users, or a member of gateway.auth.admin_groups (as the login
    methods decide it, auth.base.Authenticator.is_admin)."""
    auth = config.gateway.auth
    return user in auth.admin_users or bool(set(groups) & set(auth.admin_groups))


def check_scopes(scopes: object, admin: bool) -> tuple[str, ...]:
    """The scopes asked for, checked: known, at least one, admin-only ones only for an admin."""
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise UserError(f"scopes: give a list of one or more of {', '.join(SCOPES)}")
    unknown = sorted({s for s in scopes if s not in SCOPES})
    if unknown:
        raise UserError(f"unknown scope {unknown[0][:40]!r}: the scopes are {', '.join(SCOPES)}")
    if not admin and ADMIN_ONLY_SCOPES & set(scopes):
        raise UserError(f"only an admin's token may have {', '.join(sorted(ADMIN_ONLY_SCOPES & set(scopes)))}", 403)
    return tuple(sorted(set(scopes), key=SCOPES.index))


def check_lifetime(seconds: object) -> int:
    if seconds is None:
        return DEFAULT_LIFETIME
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_LIFETIME:
        raise UserError(f"expires_in: a whole number of seconds from 1 to {MAX_LIFETIME} (a year)")
    return seconds


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._cache: tuple[tuple[int, int], dict[str, Token]] | None = None

    def _load(self) -> dict[str, Token]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        # Each write renames a new file into place: a new inode, so a change is never missed.
        mtime = (stat.st_ino, stat.st_mtime_ns)
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            stored = {}
        tokens = {}
        for digest, data in stored.items() if isinstance(stored, dict) else ():
            try:
                tokens[digest] = Token(id=str(data["id"]), user=str(data["user"]), scopes=tuple(data["scopes"]),
                                       admin=bool(data["admin"]), created=float(data["created"]),
                                       expires=float(data["expires"]), note=str(data.get("note", "")))
            except (KeyError, TypeError, ValueError):
                continue  # a damaged record: that token no longer works
        self._cache = (mtime, tokens)
        return tokens

    @contextlib.contextmanager
    def _changing(self):
        """Held while reading and rewriting the file, so the gateway and the CLI lose none of each other's
        changes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._cache = None
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, tokens: dict[str, Token]) -> None:
        now = time.time()
        kept = {k: v for k, v in tokens.items() if v.expires >= now}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, 0o600, text=True) as out:
            json.dump({k: asdict(v) for k, v in kept.items()}, out)
        self._cache = None

    def create(self, user: str, scopes: object, *, admin: bool, expires_in: object = None,
               note: object = "") -> tuple[str, Token]:
        """A new token of ``user``: (the secret, shown once; its record)."""
        try:
            check_username(user)
        except IdentityError:
            raise UserError("user: not a valid user name") from None
        checked = check_scopes(scopes, admin)
        lifetime = check_lifetime(expires_in)
        if not isinstance(note, str) or len(note) > 200:
            raise UserError("note: text of at most 200 characters")
        with self._changing():
            tokens = dict(self._load())
            now = time.time()
            if sum(1 for t in tokens.values() if t.user == user and t.expires >= now) >= MAX_PER_USER:
                raise UserError(f"{user} has {MAX_PER_USER} tokens already: revoke some first", 409)
            secret = PREFIX + secrets.token_urlsafe(32)
            token = Token(id=secrets.token_hex(6), user=user, scopes=checked, admin=admin, created=now,
                          expires=now + lifetime, note=note)
            tokens[_digest(secret)] = token
            self._save(tokens)
        return secret, token

    def find(self, secret: str) -> Token | None:
        if not secret.startswith(PREFIX) or len(secret) > 128:
            return None
        token = self._load().get(_digest(secret))
        return token if token is not None and token.expires >= time.time() else None

    def list(self, user: str | None = None) -> list[Token]:
        now = time.time()
        return sorted((t for t in self._load().values() if t.expires >= now and (user is None or t.user == user)),
                      key=lambda t: t.created)

    def get(self, token_id: str) -> Token | None:
        return next((t for t in self.list() if t.id == token_id), None)

    def revoke(self, token_id: str) -> bool:
        with self._changing():
            tokens = self._load()
            kept = {k: v for k, v in tokens.items() if v.id != token_id}
            if len(kept) == len(tokens):
                return False
            self._save(kept)
        return True

    def revoke_all(self, user: str) -> int:
        with self._changing():
            tokens = self._load()
            kept = {k: v for k, v in tokens.items() if v.user != user}
            if len(kept) != len(tokens):
                self._save(kept)
        return len(tokens) - len(kept)
