"""tus through the whole system (gateway, nginx, the user's session): the headers and methods pass both
proxies, and one user's upload is nobody else's - bob can neither see, extend nor cancel alice's."""
from __future__ import annotations

import base64
import os

TUS = {"Tus-Resumable": "1.0.0"}


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_an_upload_through_the_gateway_is_its_users_alone(system):
    alice, bob = system.login("alice"), system.login("bob")
    body = os.urandom(3 * 1024 * 1024 + 7)
    created = alice.post(f"{system.url}/api/tus", headers={
        **TUS, "Upload-Length": str(len(body)), "Upload-Metadata": meta(root="output", folder="", name="tus_e2e.bin")})
    assert created.status_code == 201, created.text
    location = system.url + created.headers["Location"]
    piece = {**TUS, "Content-Type": "application/offset+octet-stream"}
    assert alice.patch(location, data=body[:1024 * 1024], headers={**piece, "Upload-Offset": "0"}).status_code == 204

    for method in ("HEAD", "PATCH", "DELETE"):
        sent = {**piece, "Upload-Offset": str(1024 * 1024)} if method == "PATCH" else TUS
        answer = bob.request(method, location, data=b"x" if method == "PATCH" else None, headers=sent)
        assert answer.status_code == 404, (method, answer.status_code)
    assert alice.head(location, headers=TUS).headers["Upload-Offset"] == str(1024 * 1024)

    done = alice.patch(location, data=body[1024 * 1024:], headers={**piece, "Upload-Offset": str(1024 * 1024)})
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(body))
    assert (system.folders("alice")["output"] / "tus_e2e.bin").read_bytes() == body
    assert not (system.folders("bob")["output"] / "tus_e2e.bin").exists()
