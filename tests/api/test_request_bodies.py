"""What the API takes as a request body: JSON only when it is sent as application/json (a same-site
``text/plain`` form cannot create or change anything), never nested without bound, and uploads with
their own types still work."""
from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES

HDF5 = "application/x-hdf5"
LIST = FIXTURES / "process_lists" / "basic_tomo_process.nxs"
JOB = {"process_list": "processing/basic.nxs", "dataset": "data/scan.nxs", "output": "output/run", "mode": "full"}


@pytest.fixture
def listed(roots_dir):
    shutil.copy(LIST, roots_dir / "processing" / "basic.nxs")
    return roots_dir / "processing"


def _etag(api, name: str) -> str:
    return api.get(f"/api/process-lists/{name}").headers["ETag"]


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
def test_a_form_cannot_create_a_process_list_or_a_job(api, listed, content_type):
    """What a same-site page's <form enctype=text/plain> sends: refused with 415, nothing made."""
    body = '{"plugins": []}'
    created = api.post("/api/process-lists/forged.nxs", data=body, content_type=content_type)
    assert created.status_code == 415, created.get_json()
    assert "application/json" in created.get_json()["error"]
    assert not (listed / "forged.nxs").exists()

    etag = _etag(api, "basic.nxs")
    before = (listed / "basic.nxs").read_bytes()
    for answer in (api.put("/api/process-lists/basic.nxs", data=body, content_type=content_type,
                           headers={"If-Match": etag}),
                   api.post("/api/process-lists/basic.nxs/operations", content_type=content_type,
                            data='{"operations": [{"op": "rem", "pos": "2"}]}', headers={"If-Match": etag})):
        assert answer.status_code == 415, answer.get_json()
        assert "application/json" in answer.get_json()["error"]
    assert (listed / "basic.nxs").read_bytes() == before

    job = api.post("/api/jobs", data='{"mode": "full"}', content_type=content_type)
    assert job.status_code == 415 and "application/json" in job.get_json()["error"]
    assert api.post("/api/jobs/0123/cancel", data="x", content_type=content_type).status_code == 415
    assert api.get("/api/jobs").get_json()["total"] == 0


def test_json_with_a_charset_and_uploads_with_their_own_type_are_accepted(api, listed):
    created = api.post("/api/process-lists/new.nxs", data="{}", content_type="application/json; charset=utf-8")
    assert created.status_code == 201, created.get_json()
    uploaded = api.put("/api/process-lists/uploaded.nxs", data=LIST.read_bytes(), content_type=HDF5)
    assert uploaded.status_code == 201, uploaded.get_json()
    stored = api.put("/api/files?root=processing&path=notes.txt", data=b"any bytes", content_type="text/plain")
    assert stored.status_code == 201, stored.get_json()
    assert (listed / "notes.txt").read_bytes() == b"any bytes"


NESTED = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_refused_with_400_not_500(api, listed):
    etag = _etag(api, "basic.nxs")
    before = (listed / "basic.nxs").read_bytes()
    answers = {
        "PUT list": api.put("/api/process-lists/basic.nxs", data=NESTED, content_type="application/json",
                            headers={"If-Match": etag}),
        "PUT params": api.put("/api/process-lists/basic.nxs", content_type="application/json",
                              data='{"plugins": [{"name": "X", "params": {"p": ' + "[" * 5000 + "]" * 5000 + "}}]}",
                              headers={"If-Match": etag}),
        "POST jobs": api.post("/api/jobs", data=NESTED, content_type="application/json"),
        "POST operations": api.post("/api/process-lists/basic.nxs/operations", data=NESTED,
                                    content_type="application/json", headers={"If-Match": etag}),
        "POST create": api.post("/api/process-lists/deep.nxs", data='{"plugins": ' + NESTED + "}",
                                content_type="application/json"),
    }
    for what, answer in answers.items():
        assert answer.status_code == 400, (what, answer.status_code, answer.get_data()[:200])
        assert "nested" in answer.get_json()["error"], what
    assert (listed / "basic.nxs").read_bytes() == before
    assert not (listed / "deep.nxs").exists()
