"""The user identity the gateway hands to a session, signed with that session's own secret.

The gateway strips any identity header a client sends and adds ``X-Hebi-Identity``: the identity as
JSON, base64url-encoded, a dot, and an HMAC-SHA256 of it under the per-session secret. A session accepts
a request only when the signature verifies, the identity names the session's own user, and the
signature is fresh, so a header copied from one session is worthless at another.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass, field

HEADER = "X-Hebi-Identity"
#: Headers a client must never be able to set; the gateway removes them from every request.
RESERVED_HEADERS = ("x-hebi-identity", "x-hebi-user", "x-remote-user", "remote-user", "x-forwarded-user")
MAX_AGE_SECONDS = 300
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class IdentityError(Exception):
    pass


def check_username(name: str) -> str:
    """A POSIX-portable user name; it names folders, processes and Kubernetes objects, so no surprises."""
    if not isinstance(name, str) or not USERNAME_RE.match(name):
        raise IdentityError(
            f"invalid user name {name!r}: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_'")
    return name


@dataclass(frozen=True)
class Identity:
    user: str
    uid: int | None = None
    gid: int | None = None
    home: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        data = asdict(self)
        data["groups"] = list(self.groups)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Identity:
        return cls(user=check_username(data["user"]), uid=data.get("uid"), gid=data.get("gid"),
                   home=data.get("home", ""), groups=tuple(data.get("groups", ())))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_identity(identity: Identity, secret: str, now: float | None = None) -> str:
    payload = dict(identity.to_json(), iat=int(now if now is not None else time.time()))
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_identity(header: str | None, secret: str, expected_user: str,
                    now: float | None = None) -> Identity:
    """The identity in ``header``, or IdentityError when it is missing, forged, stale or another user's."""
    if not header:
        raise IdentityError("no identity: requests reach a session only through the gateway")
    body, _, mac = header.partition(".")
    try:
        good = hmac.compare_digest(_unb64(mac), hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    except (ValueError, TypeError):
        good = False
    if not good:
        raise IdentityError("identity signature does not verify")
    try:
        payload = json.loads(_unb64(body))
        identity = Identity.from_json(payload)
        issued = int(payload["iat"])
    except (ValueError, KeyError, TypeError, IdentityError) as err:
        raise IdentityError(f"malformed identity: {err}") from None
    if abs((now if now is not None else time.time()) - issued) > MAX_AGE_SECONDS:
        raise IdentityError("identity is stale")
    if identity.user != expected_user:
        raise IdentityError("this session belongs to another user")
    return identity
