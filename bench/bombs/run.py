"""Benchmark: what issue 9's bombs cost the session's API and dataserver workers, beside the same work
done without protection (plain h5py / json in a child process).

    .venv/bin/python bench/bombs/run.py [--chunk-gib 1] [--list-gb 1.2] [--links 100000] [--depth 100000]

It writes the bombs (bombs.py) into a temporary folder (removed at the end), starts the API and the
dataserver the way the launcher does (gunicorn, gthread, 1 worker, 8 threads; here on loopback TCP, with
the session environment: HEBI_CONFIG, HEBI_SESSION_USER/SECRET/STATE_DIR/HOME), records each worker's
idle RSS, sends each bomb once with the signed identity, and samples the worker's RSS every 5 ms while the
answer is pending (its peak is the larger of the samples and the rise of VmHWM). The anchor is the same
file read the unprotected way in a fresh child process; its peak RSS is its own VmHWM. Every request has
a timeout and every child a time limit, so the run ends by itself; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import yaml

from hebi_common.identity import HEADER, Identity, sign_identity

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bombs import chunk_bomb, link_bomb, nested_json, process_list_bomb  # noqa: E402

SECRET = "bench-bombs-secret"
USER = "alice"
REQUEST_TIMEOUT = 300
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def summary(content: bytes) -> str:
    """An answer in a few words: its error, or how many children a group listing holds."""
    import json
    try:
        body = json.loads(content)
    except ValueError:
        return content[:120].decode("utf-8", "replace")
    if isinstance(body, dict) and "error" in body:
        return body["error"][:150]
    if isinstance(body, dict) and "children" in body:
        extra = {k: v for k, v in body.items() if k not in ("children", "attributes")}
        return f"{len(body['children']):,} children listed {extra}"
    return str(body)[:120]


class Service:
    """One session service under gunicorn, as the launcher starts it; ``worker`` is the worker's pid."""

    def __init__(self, app: str, env: dict[str, str], log: Path):
        self.port = free_port()
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
             "--threads", "8", "--workers", "1", "--graceful-timeout", "5", "--timeout", "600",
             "--log-level", "warning", app], env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        self.worker = 0

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers={HEADER: sign_identity(Identity(user=USER), SECRET),
                                                           **(headers or {})})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.request("GET", path)
                workers = children(self.process.pid)
                if workers:
                    self.worker = workers[0]
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
            time.sleep(0.2)
        raise SystemExit(f"{path}: the service did not start; see {self.log.name}")

    def measured(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, first line of the answer, seconds, peak RSS in MB of the worker while it answered)."""
        peak = [status_kb(self.worker, "VmRSS")]
        hwm_before = status_kb(self.worker, "VmHWM")
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak.append(status_kb(self.worker, "VmRSS"))
                except OSError:  # the worker died (OOM, or the master replaced it)
                    return
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        try:
            status, content = self.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as err:
            status, content = 0, f"no answer: {err}".encode()
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        try:
            hwm_after = status_kb(self.worker, "VmHWM")
        except OSError:
            hwm_after = hwm_before
        top = max(max(peak), hwm_after if hwm_after > hwm_before else 0)
        return status, summary(content), seconds, top / 1024

    def idle_mb(self) -> float:
        return status_kb(self.worker, "VmRSS") / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(15)
        self.log.close()


ANCHOR = r"""
import json, sys, time
def rss(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":")) / 1024
import h5py, numpy
kind, path, extra = sys.argv[1], sys.argv[2], sys.argv[3]
base = rss("VmRSS")
started = time.monotonic()
outcome = "ok"
try:
    if kind == "list":
        with h5py.File(path, "r") as f:
            f["entry/plugin/1/data"][()]
    elif kind == "value":
        with h5py.File(path, "r") as f:
            f[extra][0, 0]
    elif kind == "links":
        with h5py.File(path, "r") as f:
            group = f[extra]
            [(name, group[name].shape, group[name].dtype.str) for name in group]
    elif kind == "json":
        json.loads(open(path, "rb").read())
except BaseException as err:
    outcome = type(err).__name__
print(json.dumps({"base": base, "peak": rss("VmHWM"), "seconds": time.monotonic() - started, "outcome": outcome}))
"""


def anchor(kind: str, path: Path, extra: str = "") -> dict:
    import json
    try:
        done = subprocess.run([sys.executable, "-c", ANCHOR, kind, str(path), extra], capture_output=True,
                              text=True, timeout=REQUEST_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"peak": float("nan"), "seconds": REQUEST_TIMEOUT, "outcome": "time limit"}
    if done.returncode != 0 or not done.stdout.strip():
        return {"peak": float("nan"), "seconds": float("nan"), "outcome": f"exit {done.returncode} (killed?)"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-gib", type=float, default=1.0, help="size of the one compressed chunk")
    parser.add_argument("--list-gb", type=float, default=1.2, help="what the process-list upload expands to")
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=100_000, help="nesting of the JSON body")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="hebi-bombs-", dir="/tmp"))
    services: list[Service] = []
    try:
        roots = {name: {"path": str(base / "roots" / name), "writable": name != "data"}
                 for name in ("data", "processing", "output")}
        for root in roots.values():
            Path(root["path"]).mkdir(parents=True)
        config = base / "hebi.yaml"
        config.write_text(yaml.safe_dump({"logging": {"level": "warning"}, "session": {"roots": roots}}))
        env = dict(os.environ, HEBI_CONFIG=str(config), HEBI_SESSION_USER=USER, HEBI_SESSION_SECRET=SECRET,
                   HEBI_SESSION_HOME="", HEBI_SESSION_STATE_DIR=str(base / USER / "state"), PYTHONUNBUFFERED="1")

        print("writing the bombs...", flush=True)
        data = base / "roots" / "data"
        list_bomb = process_list_bomb(base / "bomb_list.nxs", int(args.list_gb * 1e9))
        chunk_path = chunk_bomb(data / "chunk.h5", int(args.chunk_gib * 1024**3))
        links_path = link_bomb(data / "links.h5", args.links)
        nested = base / "nested.json"
        nested.write_bytes(nested_json(args.depth))

        api = Service("hebi_api.app:create_app()", env, base / "api.log")
        dataserver = Service("hebi_dataserver.app:create_app()", env, base / "data.log")
        services += [api, dataserver]
        api.wait_ready("/api/health")
        dataserver.wait_ready("/data/?" + urlencode({"file": "data/links.h5"}))
        api.request("GET", "/api/process-lists")
        dataserver.request("GET", "/data/meta?" + urlencode({"file": "data/chunk.h5", "path": "/"}))
        idle = {"api": api.idle_mb(), "dataserver": dataserver.idle_mb()}

        rows = []

        def one(name, service, key, size, method, path, body, headers, anchor_args):
            status, first, seconds, peak = service.measured(method, path, body, headers)
            reference = anchor(*anchor_args)
            rows.append((name, key, size, status, first, seconds, peak, idle[key], reference))
            print(f"  {name}: {status} in {seconds * 1000:.1f} ms, worker peak {peak:.0f} MB "
                  f"(anchor {reference['peak']:.0f} MB, {reference['outcome']})", flush=True)

        print("sending them...", flush=True)
        one(f"process-list upload ({list_bomb.stat().st_size / MB:.1f} MB -> {args.list_gb:g} GB)", api, "api",
            list_bomb.stat().st_size, "PUT", "/api/process-lists/bomb.nxs", list_bomb.read_bytes(),
            {"Content-Type": "application/x-hdf5"}, ("list", list_bomb))
        one(f"one value of a {args.chunk_gib:g} GiB chunk", dataserver, "dataserver", (data / "chunk.h5").stat().st_size,
            "GET", "/data/data?" + urlencode({"file": "data/chunk.h5", "path": chunk_path, "selection": "0,0"}),
            None, None, ("value", data / "chunk.h5", chunk_path))
        one(f"/data/meta of {args.links:,} links", dataserver, "dataserver", (data / "links.h5").stat().st_size,
            "GET", "/data/meta?" + urlencode({"file": "data/links.h5", "path": links_path}), None, None,
            ("links", data / "links.h5", links_path))
        one(f"JSON nested {args.depth:,} deep", api, "api", nested.stat().st_size, "PUT",
            "/api/process-lists/nested.nxs", nested.read_bytes(), {"Content-Type": "application/json"},
            ("json", nested))
        still = api.request("GET", "/api/health")[0], dataserver.request("GET", "/data/?file=data/links.h5")[0]

        print()
        print("worker RSS in MB; hebi peak/idle is the worker's growth; anchor = the same read by plain h5py/json "
              "in a fresh child (its own peak RSS); hebi/anchor compares peaks")
        head = (f"{'bomb':44} {'file':>9} {'status':>6} {'ms':>7} {'idle':>6} {'peak':>6} {'peak/idle':>9} "
                f"{'anchor':>7} {'anchor s':>8} {'hebi/anchor':>11}")
        print(head)
        print("-" * len(head))
        for name, _, size, status, _, seconds, peak, idle_mb, ref in rows:
            size_text = f"{size / MB:.1f} MB"
            print(f"{name:44} {size_text:>9} {status:>6} {seconds * 1000:7.1f} {idle_mb:6.0f} {peak:6.0f} "
                  f"{peak / idle_mb:9.2f} {ref['peak']:7.0f} {ref['seconds']:8.2f} {peak / ref['peak']:11.2f}")
        print()
        for name, _, _, status, first, *_ in rows:
            print(f"{name}: {status} {first}")
        print(f"afterwards: API health {still[0]}, dataserver {still[1]}")
    finally:
        for service in services:
            service.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
