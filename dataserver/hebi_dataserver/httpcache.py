"""ETags and 304s: an answer is named by the files it was read from (as they are now) and the request.

The tag is a hash of every file the request read (real path, device, inode, size, mtime) and of its
endpoint and parameters. Savu output does not change once written, so a browser that asks again for the
same slice gets ``304 Not Modified`` without the server reading anything but the files' metadata; a
file still being written changes size or mtime, so its answers change tag as it grows.
``Cache-Control: private, no-cache`` lets the browser keep answers but makes it ask each time.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .files import FileIdentity

CACHE_CONTROL = "private, no-cache"


def etag(endpoint: str, params: Iterable[tuple[str, str]], files: Iterable[tuple[str, FileIdentity]]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(endpoint.encode())
    for key, value in sorted(params):
        digest.update(b"\0" + key.encode() + b"=" + value.encode())
    for path, identity in sorted(files):
        digest.update(b"\1" + path.encode() + b"@" + identity.token().encode())
    return f'"{digest.hexdigest()}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [part.strip() for part in if_none_match.split(",")]
    return "*" in candidates or tag in candidates or f"W/{tag}" in candidates
