"""Benchmark: hebi's dataserver beside h5grove's own Flask app and in-process h5py, on the same files.

    .venv/bin/pip install -r bench/dataserver/requirements.txt   # h5grove[flask], the anchor
    .venv/bin/python bench/dataserver/run.py [--frames 48] [--runs 9]

It writes two stacks of 2048x2048 float32 frames into a temporary folder (removed at the end), chunked
(1, 2048, 2048) and (16, 256, 256), starts both servers under the same gunicorn settings hebi's launcher
uses (gthread, 1 worker, 8 threads) on loopback, and times, per layout:
- one full-resolution frame as h5web asks for it (``format=bin&dtype=safe``): hebi, h5grove, and h5py
  in-process (``ds[i]`` on an open file), warm (frame in the page cache) and cold (the file's pages
  dropped with posix_fadvise before each run);
- a viewer-sized 512x512 view of a frame: hebi's ``size=512x512`` (mean and max), against h5grove
  serving the full frame (what h5web fetches from it) and h5grove's own strided decimation;
- a frame's statistics (``/stats``, what a viewer's colour scale asks for): hebi's, with a 128-bin
  histogram, against h5grove's (the same fields, no histogram).
Each cell is the median over ``--runs`` different frames; the client reads whole bodies over one
keep-alive connection. Figures are for comparing in one run: server and client share the machine.
"""
from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import h5py
import numpy as np
import yaml

from hebi_common.identity import HEADER, Identity, sign_identity

HERE = Path(__file__).resolve().parent
SIDE = 2048
LAYOUTS = {"frames (1,2048,2048)": (1, SIDE, SIDE), "blocks (16,256,256)": (16, 256, 256)}
SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_stack(path: Path, frames: int, chunks: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", shape=(frames, SIDE, SIDE), dtype="<f4", chunks=chunks)
        step = chunks[0]
        for start in range(0, frames, step):
            stop = min(frames, start + step)
            block = rng.random((stop - start, SIDE, SIDE), dtype=np.float32) * 1000
            block[:, ::97, :] = 5000  # thin lines, as in a real detector frame
            ds[start:stop] = block
    with open(path, "rb+") as raw:
        os.fsync(raw.fileno())


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm_cache(path: Path) -> None:
    with open(path, "rb") as raw:
        while raw.read(64 << 20):
            pass


class Server:
    def __init__(self, name: str, app: str, env: dict[str, str], extra_args=()):
        self.name = name
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
             "--threads", "8", "--workers", "1", "--timeout", "300", "--keep-alive", "30", *extra_args, app],
            env={**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE", **env}, stdout=self.log, stderr=self.log)
        self.conn: http.client.HTTPConnection | None = None
        self.buffer = bytearray(SIDE * SIDE * 4 + 1024)

    def headers(self) -> dict[str, str]:
        return {}

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get(path)
                return
            except (ConnectionError, OSError, http.client.HTTPException):
                self.conn = None
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        self.log.seek(0)
        raise SystemExit(f"{self.name} did not start:\n{self.log.read().decode(errors='replace')}")

    def get(self, path: str) -> tuple[int, memoryview, dict]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.conn.request("GET", path, headers=self.headers())
        response = self.conn.getresponse()
        length = int(response.getheader("Content-Length", "0"))
        if length > len(self.buffer):
            self.buffer = bytearray(length)
        view = memoryview(self.buffer)[:length]
        done = 0
        while done < length:
            n = response.readinto(view[done:])
            if not n:
                raise ConnectionError("short body")
            done += n
        response.read()
        return response.status, view, dict(response.getheaders())

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


class HebiServer(Server):
    def headers(self) -> dict[str, str]:
        return {HEADER: sign_identity(Identity(user="bench"), SECRET)}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=48, help="frames per stack (16 MiB each)")
    parser.add_argument("--runs", type=int, default=9, help="frames timed per cell (median reported)")
    parser.add_argument("--dir", default=None, help="where to write the stacks (default: a temporary folder)")
    args = parser.parse_args()
    try:
        import h5grove.flask_utils  # noqa: F401  (the dataserver depends on h5grove; its blueprint needs Flask)
    except ImportError:
        raise SystemExit("install the anchor first: .venv/bin/pip install -r bench/dataserver/requirements.txt") from None

    base = Path(tempfile.mkdtemp(prefix="hebi-bench-", dir=args.dir))
    servers: list[Server] = []
    try:
        data = base / "data"
        data.mkdir()
        (base / "output").mkdir()
        (base / "processing").mkdir()
        files = {}
        for label, chunks in LAYOUTS.items():
            name = f"stack_{'x'.join(map(str, chunks))}.h5"
            started = time.perf_counter()
            write_stack(data / name, args.frames, chunks)
            files[label] = name
            print(f"wrote {name}: {args.frames} frames, {(data / name).stat().st_size / 2**30:.2f} GiB "
                  f"in {time.perf_counter() - started:.1f} s", flush=True)
        config = base / "hebi.yaml"
        config.write_text(yaml.safe_dump({"logging": {"level": "warning"}, "session": {"roots": {
            root: {"path": str(base / root)} for root in ("data", "processing", "output")}}}))
        hebi = HebiServer("hebi", "hebi_dataserver.app:create_app()",
                          {"HEBI_CONFIG": str(config), "HEBI_SESSION_USER": "bench", "HEBI_SESSION_SECRET": SECRET,
                           "HEBI_SESSION_STATE_DIR": str(base / "bench" / "state")})
        grove = Server("h5grove", "h5grove_app:create_app()", {"H5_BASE_DIR": str(data)},
                       ["--pythonpath", str(HERE)])
        floor = Server("floor", "floor_app:app", {}, ["--pythonpath", str(HERE)])
        servers = [hebi, grove, floor]
        first = next(iter(files.values()))
        hebi.wait_ready(f"/data/meta?file=data/{first}&path=/data")
        grove.wait_ready(f"/meta?file={first}&path=/data")
        floor.wait_ready("/")
        report(args, data, files, hebi, grove, floor)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def report(args, data: Path, files: dict[str, str], hebi: Server, grove: Server, floor: Server) -> None:
    frames_to_time = [int(i) for i in np.linspace(0, args.frames - 1, args.runs + 1)[1:]]
    summary = []
    floors = {}
    for what in ("full", "view"):
        floor.get(f"/{what}")
        floors[what] = median([timed(lambda: floor.get(f"/{what}")) for _ in range(2 * args.runs)])
    print(f"\nHTTP floor (same gunicorn, body from memory): 16 MiB {floors['full']:.1f} ms, "
          f"1 MiB {floors['view']:.1f} ms")
    print(f"\nmedian ms over {len(frames_to_time)} frames; ratios are hebi / h5py and h5grove / h5py "
          "(full frames), h5grove-full / hebi-view (views)\n")
    header = f"{'layout':22} {'what':44} {'warm ms':>9} {'cold ms':>9}"
    print(header)
    print("-" * len(header))
    for label, name in files.items():
        path = data / name
        h5 = h5py.File(path, "r", locking=False)
        ds = h5["data"]
        expected = {i: None for i in frames_to_time}

        def h5py_read(i):
            expected[i] = ds[i]

        def url_hebi(i, extra=""):
            return "/data/data?" + urlencode({"file": f"data/{name}", "path": "/data", "selection": f"{i},:,:",
                                              "format": "bin", "dtype": "safe"}) + extra

        def url_grove(i, selection=None):
            return "/data?" + urlencode({"file": name, "path": "/data", "selection": selection or f"{i},:,:",
                                         "format": "bin", "dtype": "safe"})

        def check_full(server, url, i):
            status, body, _ = server.get(url)
            assert status == 200, (server.name, status, bytes(body[:200]))
            if expected[i] is not None:
                assert np.array_equal(np.frombuffer(body, "<f4").reshape(SIDE, SIDE), expected[i]), server.name

        def check_view(server, url):
            status, body, headers = server.get(url)
            assert status == 200, (server.name, status, bytes(body[:200]))

        cases = [
            ("h5py in-process ds[i]", lambda i: h5py_read(i)),
            ("hebi full frame (bin, safe)", lambda i: check_full(hebi, url_hebi(i), i)),
            ("h5grove full frame (bin, safe)", lambda i: check_full(grove, url_grove(i), i)),
            ("hebi 512x512 view, mean", lambda i: check_view(hebi, url_hebi(i, "&size=512x512&reduce=mean"))),
            ("hebi 512x512 view, max", lambda i: check_view(hebi, url_hebi(i, "&size=512x512&reduce=max"))),
            ("h5grove 512x512 strided (::4,::4)", lambda i: check_view(grove, url_grove(i, f"{i},::4,::4"))),
            # What a viewer asks for after each step (its colour scale's histogram): a whole frame's
            # statistics, hebi's with a 128-bin histogram, h5grove's without one.
            ("hebi stats of the frame (128 bins)", lambda i: check_view(hebi, "/data/stats?" + urlencode(
                {"file": f"data/{name}", "path": "/data", "selection": f"{i},:,:", "bins": 128}))),
            ("h5grove stats of the frame", lambda i: check_view(grove, "/stats?" + urlencode(
                {"file": name, "path": "/data", "selection": f"{i},:,:"}))),
        ]
        # Cases take turns frame by frame, so that a busy moment of the machine hits them all alike.
        warm: dict[str, list[float]] = {what: [] for what, _ in cases}
        cold: dict[str, list[float]] = {what: [] for what, _ in cases}
        warm_cache(path)
        for i in frames_to_time:
            for what, run in cases:
                run(i)  # the frame is now in the page cache (and in every cache the reader keeps)
                warm[what].append(timed(lambda: run(i)))
        for i in frames_to_time:
            for what, run in cases:
                drop_cache(path)
                cold[what].append(timed(lambda: run(i)))
        results = {what: (median(warm[what]), median(cold[what])) for what, _ in cases}
        for what, _ in cases:
            print(f"{label:22} {what:44} {results[what][0]:9.1f} {results[what][1]:9.1f}", flush=True)
        h5.close()
        summary.append((label, results))
        print()

    print("ratios (lower is better for the first two; higher is better for the last three)")
    print(f"{'layout':22} {'':44} {'warm':>9} {'cold':>9}")
    for label, r in summary:
        base_w, base_c = r["h5py in-process ds[i]"]
        rows = [
            ("hebi full / h5py  (goal <= 1.5)", r["hebi full frame (bin, safe)"], (base_w, base_c), False),
            ("h5grove full / h5py", r["h5grove full frame (bin, safe)"], (base_w, base_c), False),
            ("h5grove full / hebi 512 mean (goal >= 5)", r["h5grove full frame (bin, safe)"],
             r["hebi 512x512 view, mean"], True),
            ("h5grove full / hebi 512 max", r["h5grove full frame (bin, safe)"], r["hebi 512x512 view, max"], True),
            ("h5grove stats / hebi stats (+ histogram)", r["h5grove stats of the frame"],
             r["hebi stats of the frame (128 bins)"], True),
        ]
        for what, num, den, _ in rows:
            print(f"{label:22} {what:44} {num[0] / den[0]:9.2f} {num[1] / den[1]:9.2f}")
        # Derived, not measured: the same requests over a 1 Gbit/s link add body size / 125 MB/s.
        link_full, link_view = SIDE * SIDE * 4 / 125e3, 512 * 512 * 4 / 125e3  # ms
        grove_full, view = r["h5grove full frame (bin, safe)"], r["hebi 512x512 view, mean"]
        print(f"{label:22} {'  same at 1 Gbit/s (derived: + size/125MB/s)':44} "
              f"{(grove_full[0] + link_full) / (view[0] + link_view):9.2f} "
              f"{(grove_full[1] + link_full) / (view[1] + link_view):9.2f}")
    print(f"\nfull frame minus the HTTP floor ({floors['full']:.1f} ms), warm: "
          + ", ".join(f"{label}: hebi {r['hebi full frame (bin, safe)'][0] - floors['full']:.1f} ms, "
                      f"h5py {r['h5py in-process ds[i]'][0]:.1f} ms" for label, r in summary))


if __name__ == "__main__":
    main()
