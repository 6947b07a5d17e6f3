"""The per-user upload quota (session.quota_bytes): an upload that would take the user's writable
folders past it is refused with 413 and a clear message, and leaves nothing behind - no file, no
temporary file; what is already there (job outputs too) counts, and replacing a file frees its size."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import FIXTURES, signed_client

from hebi_common.config import HebiConfig
from hebi_common.sandbox import Roots
from hebi_common.session import SessionContext

QUOTA = 300_000
LIST = FIXTURES / "process_lists" / "basic_tomo_process.nxs"


def make_api(roots_dir: Path, quota: int = QUOTA):
    from hebi_api.app import create_app
    config = HebiConfig.model_validate({"session": {
        "roots": {"data": {"path": str(roots_dir / "data")},
                  "processing": {"path": str(roots_dir / "processing"), "writable": True},
                  "output": {"path": str(roots_dir / "output"), "writable": True}},
        "max_upload_bytes": 10 * 1024 * 1024, "quota_bytes": quota,
        "state_dir": str(roots_dir.parent / "state")}})
    context = SessionContext(user="alice", home="", secret="s", roots=Roots.from_config(config.session.roots, "alice"),
                             state_dir=roots_dir.parent / "state")
    return signed_client(create_app(config, context), context)


def files_in(roots_dir: Path) -> set[str]:
    return {str(path.relative_to(roots_dir)) for path in roots_dir.rglob("*") if path.is_file()}


def put(api, path: str, body, **kwargs):
    return api.put(f"/api/files?root=output&path={path}", data=body, content_type="application/octet-stream", **kwargs)


def test_an_upload_over_the_quota_is_refused_and_leaves_nothing(roots_dir):
    api = make_api(roots_dir)
    assert put(api, "first.bin", b"a" * 200_000).status_code == 201
    before = files_in(roots_dir)
    refused = put(api, "second.bin", b"b" * 200_000)
    assert refused.status_code == 413
    error = refused.get_json()["error"]
    assert "quota" in error and str(QUOTA) in error and "200000" in error
    assert files_in(roots_dir) == before, "nothing of the refused upload may stay, not even a temporary file"


def test_an_upload_of_unknown_length_is_stopped_at_the_quota(roots_dir):
    api = make_api(roots_dir)
    stream = io.BytesIO(b"c" * 400_000)
    refused = api.put("/api/files?root=output&path=streamed.bin", input_stream=stream,
                      headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
                      environ_overrides={"wsgi.input_terminated": True})  # as gunicorn says of a chunked body
    assert refused.status_code == 413 and "quota" in refused.get_json()["error"]
    assert files_in(roots_dir) == set()


def test_files_already_there_count_and_replacing_a_file_frees_its_size(roots_dir):
    (roots_dir / "output" / "job_result.h5").write_bytes(b"r" * 250_000)  # a job's output
    api = make_api(roots_dir)
    assert put(api, "small.bin", b"s" * 60_000).status_code == 413
    (roots_dir / "output" / "job_result.h5").unlink()
    api = make_api(roots_dir)  # measured afresh
    assert put(api, "one.bin", b"1" * 250_000).status_code == 201
    assert put(api, "one.bin", b"2" * 280_000).status_code == 201, "the replaced 250 kB are freed"
    assert (roots_dir / "output" / "one.bin").read_bytes() == b"2" * 280_000


def test_a_process_list_upload_counts_too(roots_dir):
    api = make_api(roots_dir, quota=LIST.stat().st_size // 2)
    refused = api.put("/api/process-lists/mine.nxs", data=LIST.read_bytes(), content_type="application/x-hdf5")
    assert refused.status_code == 413 and "quota" in refused.get_json()["error"]
    assert files_in(roots_dir) == set()


@pytest.mark.parametrize("quota", [0])
def test_no_quota_configured_means_no_limit_but_max_upload_bytes(roots_dir, quota):
    api = make_api(roots_dir, quota=quota)
    assert put(api, "big.bin", b"x" * 1_000_000).status_code == 201
