"""Browsing and uploading files in the session's roots through the API."""
import os

import pytest


def test_listing_shows_folders_first_and_hides_links_out_of_the_root(api, roots_dir, tmp_path):
    data = roots_dir / "data"
    (data / "scans").mkdir()
    (data / "b.nxs").write_bytes(b"12345")
    (data / "A.txt").write_text("a")
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", data / "escape.txt")
    answer = api.get("/api/files?root=data&path=")
    assert answer.status_code == 200
    body = answer.get_json()
    assert [e["name"] for e in body["entries"]] == ["scans", "A.txt", "b.nxs"]
    assert body["entries"][2]["size"] == 5 and body["entries"][0]["type"] == "folder"
    assert body["writable"] is False


@pytest.mark.parametrize("query, status", [
    ("root=data&path=../", 400),
    ("root=data&path=..%2F..%2Fetc", 400),
    ("root=home&path=", 404),
    ("path=x", 400),
    ("root=data&path=missing", 404),
    ("root=data&path=%00", 400),
])
def test_bad_listing_requests_get_clear_json_errors(api, query, status):
    answer = api.get(f"/api/files?{query}")
    assert answer.status_code == status
    assert answer.is_json and answer.get_json()["error"]


def test_upload_streams_into_a_writable_root_atomically(api, roots_dir):
    body = os.urandom(300_000)
    answer = api.put("/api/files?root=processing&path=lists/new.nxs", data=body)
    assert answer.status_code == 404  # the folder does not exist: nothing is created on the way
    (roots_dir / "processing" / "lists").mkdir()
    answer = api.put("/api/files?root=processing&path=lists/new.nxs", data=body)
    assert answer.status_code == 201, answer.get_json()
    assert (roots_dir / "processing" / "lists" / "new.nxs").read_bytes() == body
    assert not [p for p in (roots_dir / "processing" / "lists").iterdir() if p.name.startswith(".upload-")]


def test_upload_is_refused_on_read_only_roots_and_outside_roots(api, roots_dir):
    assert api.put("/api/files?root=data&path=x.nxs", data=b"x").status_code == 403
    assert api.put("/api/files?root=output&path=../data/x.nxs", data=b"x").status_code == 400
    assert api.put("/api/files?root=output&path=", data=b"x").status_code == 400
    assert not (roots_dir / "data" / "x.nxs").exists()


def test_oversized_upload_is_refused_and_leaves_the_old_file(api, roots_dir):
    target = roots_dir / "output" / "keep.bin"
    target.write_bytes(b"old contents")
    answer = api.put("/api/files?root=output&path=keep.bin", data=b"x" * (1024 * 1024 + 1))
    assert answer.status_code == 413
    assert "1048576" in answer.get_json()["error"]
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in (roots_dir / "output").iterdir()] == ["keep.bin"]


def test_requests_without_the_gateways_identity_are_refused(api_app):
    plain = api_app.test_client()
    answer = plain.get("/api/whoami")
    assert answer.status_code == 401
    forged = plain.get("/api/whoami", headers={"X-Hebi-Identity": "eyJ1c2VyIjoiYWxpY2UifQ.AAAA"})
    assert forged.status_code == 401


def test_whoami_and_plugins(api):
    me = api.get("/api/whoami").get_json()
    assert me["user"] == "alice"
    assert {r["name"] for r in me["roots"]} == {"data", "processing", "output"}
    plugins = api.get("/api/plugins").get_json()["plugins"]
    assert len(plugins) >= 43
    assert any(p["name"] == "NxtomoLoader" for p in plugins)
