"""The Files area's operations through the API: download, folder zip, new folder, move, copy, delete into
the trash (restore, empty), text tail, TIFF preview, hebi's own folders hidden; bad input gets a 4xx JSON
answer and changes nothing."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile


def snapshot(roots_dir: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(roots_dir)): (p.read_bytes() if p.is_file() else None) for p in sorted(roots_dir.rglob("*"))}


def post(api, url: str, body: object):
    return api.post(url, json=body)


def test_internal_folders_are_hidden_and_refused(api, roots_dir):
    out = roots_dir / "output"
    (out / ".hebi" / "job1").mkdir(parents=True)
    (out / ".hebi-trash").mkdir()
    (out / "run").mkdir()
    names = [e["name"] for e in api.get("/api/files?root=output").get_json()["entries"]]
    assert names == ["run"]
    for url in ("/api/files?root=output&path=.hebi", "/api/files/zip?root=output&path=.hebi",
                "/api/files/content?root=output&path=.hebi/job1"):
        answer = api.get(url)
        assert answer.status_code == 403 and answer.get_json()["error"], url
    assert api.delete("/api/files?root=output&path=.hebi").status_code == 403
    assert (out / ".hebi" / "job1").is_dir()


def test_download_sends_the_bytes_as_an_attachment_with_ranges(api, roots_dir):
    body = os.urandom(50_000)
    (roots_dir / "output" / "page.html").write_bytes(body)
    answer = api.get("/api/files/content?root=output&path=page.html")
    assert answer.status_code == 200 and answer.data == body
    assert answer.headers["Content-Type"] == "application/octet-stream"  # never run as a page of hebi
    assert answer.headers["Content-Disposition"].startswith("attachment")
    part = api.get("/api/files/content?root=output&path=page.html", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == body[100:200]


def test_a_folder_downloads_as_a_zip_without_hebis_folders(api, roots_dir):
    run = roots_dir / "output" / "run"
    (run / "sub").mkdir(parents=True)
    (run / "user.log").write_text("hello\n")
    big = os.urandom(3 * 1024 * 1024 + 17)
    (run / "sub" / "big.bin").write_bytes(big)
    (run / ".hebi").mkdir()
    (run / ".hebi" / "secret").write_text("x")
    answer = api.get("/api/files/zip?root=output&path=run")
    assert answer.status_code == 200 and answer.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.data))
    assert sorted(archive.namelist()) == ["run/sub/big.bin", "run/user.log"]
    assert archive.read("run/sub/big.bin") == big and archive.testzip() is None


def test_new_folder_move_copy(api, roots_dir):
    proc = roots_dir / "processing"
    assert post(api, "/api/files/folder", {"path": "processing/lists"}).status_code == 201
    (proc / "lists" / "a.nxs").write_bytes(b"A")
    assert post(api, "/api/files/move", {"from": "processing/lists/a.nxs", "to": "processing/lists/b.nxs"}).status_code == 200
    assert (proc / "lists" / "b.nxs").read_bytes() == b"A" and not (proc / "lists" / "a.nxs").exists()
    answer = post(api, "/api/files/copy", {"from": "processing/lists", "to": "output/lists-copy"})
    assert answer.status_code == 201, answer.get_json()
    assert (roots_dir / "output" / "lists-copy" / "b.nxs").read_bytes() == b"A"
    assert post(api, "/api/files/copy", {"from": "processing/lists/b.nxs", "to": "processing/c.nxs"}).status_code == 201
    assert (proc / "c.nxs").read_bytes() == b"A"
    assert not [p for p in proc.iterdir() if p.name.startswith(".hebi")]


@pytest.mark.parametrize("url, body, status", [
    ("/api/files/folder", {"path": "data/new"}, 403),                         # read-only root
    ("/api/files/folder", {"path": "processing/../x"}, 400),
    ("/api/files/folder", {"path": "processing/exists"}, 409),
    ("/api/files/folder", {"path": "processing/no/such/parent"}, 404),
    ("/api/files/folder", {"path": "processing/.hebi-mine"}, 403),
    ("/api/files/folder", {"path": "processing/tab\there"}, 400),
    ("/api/files/folder", {"path": 7}, 400),
    ("/api/files/folder", ["processing/x"], 400),
    ("/api/files/move", {"from": "processing/exists/f.txt", "to": "processing/exists"}, 409),  # never replaces
    ("/api/files/move", {"from": "processing/exists", "to": "processing/exists/inside"}, 400),
    ("/api/files/move", {"from": "data/raw.nxs", "to": "processing/raw.nxs"}, 403),  # moving out of read-only
    ("/api/files/move", {"from": "processing/missing", "to": "processing/y"}, 404),
    ("/api/files/move", {"from": "processing", "to": "output/p"}, 400),
    ("/api/files/copy", {"from": "processing/exists", "to": "data/exists"}, 403),
    ("/api/files/copy", {"from": "processing/exists/f.txt", "to": "nowhere/f.txt"}, 404),
    ("/api/files/copy", {"from": "processing/exists/f.txt"}, 400),
])
def test_bad_operations_get_json_errors_and_change_nothing(api, roots_dir, url, body, status):
    (roots_dir / "processing" / "exists").mkdir()
    (roots_dir / "processing" / "exists" / "f.txt").write_text("f")
    (roots_dir / "data" / "raw.nxs").write_bytes(b"raw")
    before = snapshot(roots_dir)
    answer = post(api, url, body)
    assert answer.status_code == status, answer.get_json()
    assert answer.is_json and answer.get_json()["error"]
    assert snapshot(roots_dir) == before


def test_form_bodies_are_refused(api, roots_dir):
    answer = api.post("/api/files/folder", data="path=processing/x", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 415 and not (roots_dir / "processing" / "x").exists()


def test_delete_goes_to_the_trash_which_restores_and_empties(api, roots_dir):
    out = roots_dir / "output"
    (out / "run").mkdir()
    (out / "run" / "user.log").write_text("log")
    (out / "old.txt").write_text("old")
    assert api.delete("/api/files?root=output&path=run").status_code == 200
    assert api.delete("/api/files?root=output&path=old.txt").status_code == 200
    assert [e["name"] for e in api.get("/api/files?root=output").get_json()["entries"]] == []
    trash = api.get("/api/files/trash").get_json()
    assert {i["path"] for i in trash["items"]} == {"output/run", "output/old.txt"} and trash["total_bytes"] == 6
    run_item = next(i for i in trash["items"] if i["path"] == "output/run")
    assert post(api, "/api/files/trash/restore", {"id": run_item["id"]}).status_code == 200
    assert (out / "run" / "user.log").read_text() == "log"
    assert api.delete("/api/files/trash").get_json() == {"removed": 1}
    assert api.get("/api/files/trash").get_json()["items"] == []
    assert not (out / "old.txt").exists()


def test_bad_deletes_change_nothing(api, roots_dir):
    (roots_dir / "data" / "raw.nxs").write_bytes(b"raw")
    before = snapshot(roots_dir)
    for url, status in [("/api/files?root=data&path=raw.nxs", 403), ("/api/files?root=output&path=", 400),
                        ("/api/files?root=output&path=missing", 404), ("/api/files?root=output&path=../data/raw.nxs", 400),
                        ("/api/files/trash?id=output:nothing", 404)]:
        answer = api.delete(url)
        assert answer.status_code == status and answer.get_json()["error"], url
    assert post(api, "/api/files/trash/restore", {"id": "x"}).status_code == 404
    assert snapshot(roots_dir) == before


def test_text_tail_of_a_log_and_binary_refused(api, roots_dir):
    log = roots_dir / "output" / "user.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    whole = api.get("/api/files/text?root=output&path=user.log").get_json()
    assert whole["text"].startswith("line 0\n") and not whole["truncated"]
    tail = api.get("/api/files/text?root=output&path=user.log&bytes=9").get_json()
    assert tail["text"] == "line 999\n" and tail["truncated"]
    (roots_dir / "output" / "b.bin").write_bytes(b"\x00\x01" * 10)
    assert api.get("/api/files/text?root=output&path=b.bin").status_code == 415
    assert api.get("/api/files/text?root=output&path=user.log&bytes=-1").status_code == 400


def test_tiff_preview_is_a_png_with_stretched_contrast(api, roots_dir):
    image = np.zeros((300, 2500), dtype=np.uint16)
    image[:, 1250:] = 4000
    tifffile.imwrite(roots_dir / "data" / "proj.tif", image)
    answer = api.get("/api/files/preview?root=data&path=proj.tif")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert answer.data.startswith(b"\x89PNG")
    width, height = int.from_bytes(answer.data[16:20], "big"), int.from_bytes(answer.data[20:24], "big")
    assert max(width, height) <= 1024 and width > height
    (roots_dir / "data" / "fake.tif").write_bytes(b"not a tiff")
    bad = api.get("/api/files/preview?root=data&path=fake.tif")
    assert bad.status_code == 415 and "TIFF" in bad.get_json()["error"]


def test_a_zip_is_sent_while_it_is_made(api, roots_dir):
    run = roots_dir / "output" / "big"
    run.mkdir()
    for i in range(3):
        (run / f"part{i}.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    answer = api.get("/api/files/zip?root=output&path=big", buffered=False)
    pieces = [len(piece) for piece in answer.response]
    assert len(pieces) > 10 and max(pieces) <= 1024 * 1024 + 4096  # one chunk at a time, never the archive
    assert sum(pieces) > 12 * 1024 * 1024


def test_deleting_a_link_deletes_the_link_not_what_it_leads_to(api, roots_dir):
    out = roots_dir / "output"
    (out / "real.txt").write_text("kept")
    os.symlink(out / "real.txt", out / "link.txt")
    assert api.delete("/api/files?root=output&path=link.txt").status_code == 200
    assert (out / "real.txt").read_text() == "kept" and not os.path.lexists(out / "link.txt")
    assert [i["path"] for i in api.get("/api/files/trash").get_json()["items"]] == ["output/link.txt"]
