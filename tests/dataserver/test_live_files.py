"""The dataserver as the launcher runs it (hebi_common.serve: gunicorn's gthread worker, 8 threads): many viewers read at
once, and a running job appends frames to a file while it is being looked at."""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest
import requests
import yaml

from hebi_common.identity import HEADER, Identity, sign_identity

SECRET = "live-files-test-secret"


class LiveDataserver:
    def __init__(self, url: str, data):
        self.url = url
        self.data = data

    def get(self, path: str, **kwargs) -> requests.Response:
        headers = {HEADER: sign_identity(Identity(user="alice"), SECRET), **kwargs.pop("headers", {})}
        return requests.get(self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    base = tmp_path_factory.mktemp("live")
    roots = {name: {"path": str(base / name), "writable": name != "data"} for name in ("data", "processing", "output")}
    for root in roots.values():
        (base / root["path"]).mkdir(parents=True, exist_ok=True)
    config = base / "hebi.yaml"
    config.write_text(yaml.safe_dump({"session": {"roots": roots}}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"HEBI_CONFIG": str(config), "HEBI_SESSION_USER": "alice", "HEBI_SESSION_SECRET": SECRET,
           "HEBI_SESSION_STATE_DIR": str(base / "alice" / "state"), "PATH": "/usr/bin:/bin"}
    log = open(base / "gunicorn.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "hebi_common.serve", "--bind", f"127.0.0.1:{port}",
                                "--threads", "8", "--timeout", "120",
                                "hebi_dataserver.app:create_app()"], env=env, stdout=log, stderr=log)
    server = LiveDataserver(f"http://127.0.0.1:{port}", base / "data")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if server.get("/data/").status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (base / "gunicorn.log").read_text()
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_many_viewers_read_different_views_at_once(live):
    frames = np.stack([np.full((256, 256), i, dtype=np.float32) + np.arange(256, dtype=np.float32)
                       for i in range(24)])
    big = np.random.default_rng(3).random((6, 768, 512), dtype=np.float32)  # 1.5 MiB frames: sent by sendfile
    with h5py.File(live.data / "stack.h5", "w") as f:
        f.create_dataset("chunked", data=frames, chunks=(4, 64, 64))
        f.create_dataset("gzip", data=frames, chunks=(1, 256, 256), compression="gzip")
        f.create_dataset("big", data=big, chunks=(1, 768, 512))

    def one(k: int):
        if k % 5 == 0:
            answer = live.get(f"/data/data?file=data/stack.h5&path=/big&selection={k % 6}&format=bin&dtype=safe")
            return answer.status_code, bool(np.array_equal(np.frombuffer(answer.content, "<f4").reshape(768, 512),
                                                           big[k % 6]))
        name = ("chunked", "gzip")[k % 2]
        index = k % 24
        if k % 3 == 0:
            answer = live.get(f"/data/data?file=data/stack.h5&path=/{name}&selection={index},:,:&size=64x64"
                              "&reduce=max&format=bin")
            view = np.frombuffer(answer.content, "<f4").reshape(64, 64)
            return answer.status_code, bool((view[:, -1] == index + 255).all())
        answer = live.get(f"/data/data?file=data/stack.h5&path=/{name}&selection={index},:,:&format=bin&dtype=safe")
        return answer.status_code, bool(np.array_equal(np.frombuffer(answer.content, "<f4").reshape(256, 256),
                                                       frames[index]))

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(240)))
    assert results == [(200, True)] * 240


WRITER = textwrap.dedent("""
    import sys, time
    import h5py, numpy as np
    path, frames, swmr = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "swmr"
    with h5py.File(path, "w", libver="latest" if swmr else "earliest") as f:
        d = f.create_dataset("frames", shape=(0, 64, 64), maxshape=(None, 64, 64), chunks=(1, 64, 64), dtype="f4")
        if swmr:
            f.swmr_mode = True
        f.flush()
        open(path + ".ready", "w").close()
        for i in range(frames):
            d.resize(i + 1, axis=0)
            d[i] = i
            f.flush()
            time.sleep(0.04)
""")


@pytest.mark.parametrize("mode", ["swmr", "plain"])
def test_a_file_being_appended_to_is_read_as_it_grows(live, mode):
    path = live.data / f"growing-{mode}.h5"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "60", mode])
    statuses: list[int] = []
    seen_lengths: set[int] = set()
    wrong: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while not (live.data / f"growing-{mode}.h5.ready").exists():
            assert time.monotonic() < deadline and writer.poll() in (None, 0)
            time.sleep(0.02)
        while writer.poll() is None:
            meta = live.get(f"/data/meta?file=data/{path.name}&path=/frames")
            statuses.append(meta.status_code)
            if meta.status_code != 200:
                assert meta.headers["Content-Type"].startswith("application/json") and meta.json()["message"]
                continue
            length = meta.json()["shape"][0]
            seen_lengths.add(length)
            if length == 0:
                continue
            frame = live.get(f"/data/data?file=data/{path.name}&path=/frames&selection={length - 1}&format=bin")
            statuses.append(frame.status_code)
            if frame.status_code == 200:
                values = np.frombuffer(frame.content, "<f4")
                if not (values == length - 1).all() and not (values == 0).all():  # 0: not yet written
                    wrong.append(f"frame {length - 1}: {np.unique(values)[:5]}")
            else:
                assert frame.json()["message"]
        assert writer.wait(timeout=30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    assert not wrong, wrong
    assert set(statuses) <= {200, 422}, statuses  # a half-written moment may be refused, never a crash
    assert len(seen_lengths) > 3, seen_lengths  # it really was read while growing
    if mode == "swmr":
        assert set(statuses) == {200}  # SWMR files are always consistent to a reader
    final = live.get(f"/data/data?file=data/{path.name}&path=/frames&selection=59&format=bin")
    assert (np.frombuffer(final.content, "<f4") == 59).all()
