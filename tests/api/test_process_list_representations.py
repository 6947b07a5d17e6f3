"""A process list has two representations at one path, the editor's JSON and Savu's .nxs file: each has
its own ETag and the answers say they vary on Accept, so a browser never takes one for the other; the
.nxs also has a download URL of its own. Changes need the strong ETag (RFC 9110: If-Match compares
strongly), so a weak W/"..." tag is refused with 412."""
from __future__ import annotations

import io
import shutil

import h5py
import pytest
from conftest import FIXTURES

from hebi_common.savu.process_list import read_process_list_bytes

HDF5 = "application/x-hdf5"
LIST = FIXTURES / "process_lists" / "basic_tomo_process.nxs"


@pytest.fixture
def processing(roots_dir):
    shutil.copy(LIST, roots_dir / "processing" / "basic.nxs")
    return roots_dir / "processing"


def test_a_weak_etag_does_not_satisfy_if_match(api, processing):
    etag = api.get("/api/process-lists/basic.nxs").headers["ETag"]
    assert not etag.startswith("W/")
    before = (processing / "basic.nxs").read_bytes()
    weak = {"If-Match": "W/" + etag}
    document = api.get("/api/process-lists/basic.nxs").get_json()
    answers = [api.put("/api/process-lists/basic.nxs", json={"plugins": document["plugins"]}, headers=weak),
               api.post("/api/process-lists/basic.nxs/operations", json={"operations": [{"op": "rem", "pos": "2"}]},
                        headers=weak),
               api.delete("/api/process-lists/basic.nxs", headers=weak),
               api.put("/api/process-lists/basic.nxs", data=before, content_type=HDF5, headers=weak)]
    for answer in answers:
        assert answer.status_code == 412, answer.get_json()
        assert "changed since you read it" in answer.get_json()["error"]
    assert (processing / "basic.nxs").read_bytes() == before
    # The strong tag, in a list with others, still works.
    listed = api.delete("/api/process-lists/basic.nxs", headers={"If-Match": f'"other", {etag}'})
    assert listed.status_code == 204


def test_json_and_nxs_have_their_own_etags_and_vary_on_accept(api, processing):
    as_json = api.get("/api/process-lists/basic.nxs", headers={"Accept": "application/json"})
    as_nxs = api.get("/api/process-lists/basic.nxs", headers={"Accept": HDF5})
    assert as_json.mimetype == "application/json" and as_nxs.mimetype == HDF5
    assert as_json.headers["ETag"] != as_nxs.headers["ETag"]
    assert "Accept" in as_json.headers["Vary"] and "Accept" in as_nxs.headers["Vary"]
    # The JSON's tag never revalidates the .nxs (the bug: the browser then saved the cached JSON) ...
    revalidated = api.get("/api/process-lists/basic.nxs", headers={"Accept": HDF5,
                                                                    "If-None-Match": as_json.headers["ETag"]})
    assert revalidated.status_code == 200 and revalidated.data == LIST.read_bytes()
    # ... its own tag does.
    same = api.get("/api/process-lists/basic.nxs", headers={"Accept": HDF5, "If-None-Match": as_nxs.headers["ETag"]})
    assert same.status_code == 304


def test_the_nxs_has_a_download_url_of_its_own(api, processing):
    answer = api.get("/api/process-lists/basic.nxs?format=nxs")  # whatever the browser's Accept says
    assert answer.status_code == 200 and answer.mimetype == HDF5
    assert answer.headers["Content-Disposition"].startswith("attachment")
    assert 'filename="basic.nxs"' in answer.headers["Content-Disposition"]
    assert answer.headers["ETag"] == api.get("/api/process-lists/basic.nxs", headers={"Accept": HDF5}).headers["ETag"]
    with h5py.File(io.BytesIO(answer.data), "r") as nexus:
        assert "entry" in nexus
    assert read_process_list_bytes(answer.data, "basic.nxs").plugins[0].name.endswith("Loader")
    assert api.get("/api/process-lists/basic.nxs?format=xml").status_code == 400
