"""The tus server (/api/tus: core, creation, termination): an upload sent in pieces, cut and resumed,
arrives byte for byte; bad requests get a 4xx JSON answer and leave nothing behind."""
from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from test_quota import make_api

TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(api, length: int, **meta: str):
    meta = {"root": "output", "folder": "", **meta}
    return api.post("/api/tus", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**meta)})


def patch(api, location: str, offset: int, data: bytes):
    return api.patch(location, data=data, headers={**TUS, "Upload-Offset": str(offset),
                                                   "Content-Type": "application/offset+octet-stream"})


def visible(roots_dir: Path) -> set[str]:
    return {str(p.relative_to(roots_dir)) for p in roots_dir.rglob("*") if p.is_file()}


def test_options_tells_the_version_and_extensions(api):
    answer = api.options("/api/tus")
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0" and answer.headers["Tus-Extension"] == "creation,termination"
    assert int(answer.headers["Tus-Max-Size"]) == 1024 * 1024


def test_an_upload_in_pieces_cut_and_resumed_arrives_whole(api, roots_dir):
    (roots_dir / "output" / "scans").mkdir()
    body = os.urandom(900_000)
    answer = create(api, len(body), folder="scans", name="run1/proj.tif")
    assert answer.status_code == 201, answer.get_json()
    location = answer.headers["Location"]
    assert location.startswith("/api/tus/")
    assert patch(api, location, 0, body[:300_000]).headers["Upload-Offset"] == "300000"
    # The client lost track (a cut connection): it asks, and goes on from there.
    head = api.head(location, headers=TUS)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "300000"
    assert head.headers["Upload-Length"] == str(len(body))
    stale = patch(api, location, 0, body[:10])
    assert stale.status_code == 409 and stale.get_json()["offset"] == 300000
    assert not (roots_dir / "output" / "scans" / "run1" / "proj.tif").exists()  # never seen half-uploaded
    last = patch(api, location, 300_000, body[300_000:])
    assert last.status_code == 204 and last.headers["Upload-Offset"] == str(len(body))
    assert (roots_dir / "output" / "scans" / "run1" / "proj.tif").read_bytes() == body
    assert visible(roots_dir) == {"output/scans/run1/proj.tif"}  # no part file or record left
    assert api.head(location, headers=TUS).status_code == 404


def test_termination_removes_the_partial_upload(api, roots_dir):
    location = create(api, 1000, name="x.bin").headers["Location"]
    patch(api, location, 0, b"a" * 100)
    assert api.delete(location, headers=TUS).status_code == 204
    assert visible(roots_dir) == set()
    assert api.head(location, headers=TUS).status_code == 404


def test_an_empty_file_is_finished_at_creation(api, roots_dir):
    assert create(api, 0, name="empty.txt").status_code == 201
    assert (roots_dir / "output" / "empty.txt").read_bytes() == b""


def test_an_existing_file_is_replaced_only_when_asked(api, roots_dir):
    (roots_dir / "output" / "a.txt").write_text("old")
    refused = create(api, 3, name="a.txt")
    assert refused.status_code == 409 and refused.get_json()["exists"] is True
    location = create(api, 3, name="a.txt", overwrite="1").headers["Location"]
    patch(api, location, 0, b"new")
    assert (roots_dir / "output" / "a.txt").read_text() == "new"


@pytest.mark.parametrize("headers, meta, status", [
    ({}, {"name": "a"}, 400),                                   # no Upload-Length
    ({"Upload-Length": "-1"}, {"name": "a"}, 400),
    ({"Upload-Length": "2000000"}, {"name": "a"}, 413),        # above max_upload_bytes
    ({"Upload-Length": "10"}, {"name": "a", "root": "data"}, 403),
    ({"Upload-Length": "10"}, {"name": "a", "root": "home"}, 404),
    ({"Upload-Length": "10"}, {"name": "../../x"}, 400),
    ({"Upload-Length": "10"}, {"name": "ok", "folder": "../data"}, 400),
    ({"Upload-Length": "10"}, {"name": "ok", "folder": "missing"}, 404),
    ({"Upload-Length": "10"}, {"name": ".hebi/job"}, 400),
    ({"Upload-Length": "10"}, {"name": ""}, 400),
    ({"Upload-Length": "10", "Upload-Metadata": "name !!!"}, None, 400),
    ({"Upload-Length": "10", "Tus-Resumable": "0.2.2"}, {"name": "a"}, 412),
])
def test_bad_creations_get_json_errors_and_leave_nothing(api, roots_dir, headers, meta, status):
    sent = {**TUS, **headers}
    if meta is not None:
        sent["Upload-Metadata"] = metadata(**{"root": "output", **meta})
    answer = api.post("/api/tus", headers=sent)
    assert answer.status_code == status, answer.get_json()
    assert answer.is_json and answer.get_json()["error"]
    assert visible(roots_dir) == set() and not list(roots_dir.rglob(".hebi-uploads/*"))


def test_bad_pieces_are_refused_and_keep_what_arrived(api, roots_dir):
    location = create(api, 10, name="ten.bin").headers["Location"]
    assert patch(api, location, 0, b"12345").status_code == 204
    too_long = patch(api, location, 5, b"123456")
    assert too_long.status_code == 413 and too_long.get_json()["error"]
    wrong_type = api.patch(location, data=b"67890", headers={**TUS, "Upload-Offset": "5", "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert api.patch(location, data=b"6", headers={**TUS, "Content-Type": "application/offset+octet-stream"}).status_code == 400
    assert api.head(location, headers=TUS).headers["Upload-Offset"] == "5"
    for bad in ("/api/tus/zzz", "/api/tus/" + "0" * 32):
        assert api.head(bad, headers=TUS).status_code == 404
        assert patch(api, bad, 0, b"x").status_code == 404


def test_pieces_past_the_quota_are_refused(roots_dir):
    (roots_dir / "output" / "other.bin").write_bytes(b"x" * 500)
    api = make_api(roots_dir, quota=1000)
    assert create(api, 5000, name="big.bin").status_code == 413
    first, second = (create(api, 400, name=name).headers["Location"] for name in ("one.bin", "two.bin"))
    assert patch(api, first, 0, b"1" * 400).status_code == 204
    refused = patch(api, second, 0, b"2" * 400)  # both fitted when created; only one fits when sent
    assert refused.status_code == 413 and "quota" in refused.get_json()["error"]
    assert api.head(second, headers=TUS).headers["Upload-Offset"] == "0"
    assert (roots_dir / "output" / "one.bin").exists() and not (roots_dir / "output" / "two.bin").exists()
