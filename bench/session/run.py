"""bench/session: what one idle session costs in memory, and how long its first answers take.

Starts the real system on loopback the way the tests do (scripts/local_system.py: a configuration, N
accounts, the gateway), logs each user in with requests, and times login -> app shell (/), then the first
requests of browsing (Files, the Viewer on the sample scan) and of editing (a process list, Jobs). It
measures memory twice, each time after the sessions have sat idle for a moment: after browsing, and
after editing plus a burst of parallel reads. It sums, per session, the memory of every process from
/proc/PID/smaps_rollup: RSS (counts shared pages once per process, so it overstates), PSS (shared pages
divided among the processes sharing them: the honest per-session cost when N sessions run) and USS
(private pages only). The goal (an idle session at most 100 MB) is read in PSS.

Under ``--launcher podman`` a session's processes are its pod's: each container's (nginx, gunicorn),
the pod's infra process and one conmon per container.

With ``--compare REV`` the same run is made first for the tree at git revision REV (extracted with
``git archive`` into a temporary folder and put first on PYTHONPATH, so its launcher and apps run), and
the two are printed side by side with ratios (current / REV).

    .venv/bin/python bench/session/run.py [--launcher local|podman] [--sessions 5] [--compare REV]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import local_system  # noqa: E402

PACKAGES = ["api", "common", "dataserver", "runner", "kubernetes/gateway", "kubernetes/pod_launcher"]
#: A user's first minute, in two steps. Browsing: the Files page and the Viewer (what the goal's "idle
#: session" has done). Editing: the process list editor (the API's first use of h5py and numpy) and the
#: Jobs page, followed by a burst of parallel reads.
BROWSE = (
    ("/api/health", "/api/health"),
    ("/api/files", "/api/files?root=data"),
    ("/data/ (health)", "/data/"),
    ("/data/meta", "/data/meta/?file=data/scan.nxs&path=/"),
    ("/data/data", "/data/data/?file=data/scan.nxs&path=/entry1/tomo_entry/data/data&selection=0&format=bin"),
)
EDIT = (
    ("/api/plugins", "/api/plugins?q="),
    ("/api/process-lists/..", "/api/process-lists/list.nxs"),
    ("/api/jobs", "/api/jobs?limit=500"),
)
#: The burst after them: the whole scan (3 MB, as the Viewer's slicer reads it), a downsampled view, a listing.
BURST_REQUESTS = (
    ("whole scan", "/data/data/?file=data/scan.nxs&path=/entry1/tomo_entry/data/data&format=bin"),
    ("view", "/data/data/?file=data/scan.nxs&path=/entry1/tomo_entry/data/data&selection=95&format=bin"),
    ("listing", "/api/files?root=data"),
)
TIMEOUT = 120  # seconds any single request may take, so a broken run ends


def extract_revision(rev: str, into: Path) -> Path:
    """The tree at ``rev`` (its Python packages and the nginx template) under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, *PACKAGES, "web/nginx"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def memory(pid: int) -> dict[str, float] | None:
    """RSS, PSS and USS of ``pid`` in MB (10^6 bytes), and its thread count; None when it is gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        threads = int(re.search(r"^Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))
    except (OSError, AttributeError):
        return None
    kb = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+):\s+(\d+) kB", rollup, re.M)}
    return {"rss": kb["Rss"] / 1000, "pss": kb["Pss"] / 1000,
            "uss": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1000, "threads": threads,
            "command": " ".join(part.decode(errors="replace") for part in command[:4])[:60]}


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def session_processes(launcher: str, config: dict, user: str) -> dict[str, list[int]]:
    """Each part of the user's session (api, data, router) and the pids running it (its descendants too)."""
    if launcher == "local":
        record = json.loads(Path(config["launcher"]["local"]["state_dir"], user, "session.json").read_text())
        roots = {name: p["pid"] for name, p in record["processes"].items()}
    else:
        # Each container's main process (with what it starts) and the conmon that watches it.
        record = json.loads(Path(config["launcher"]["podman"]["state_dir"], user, "session.json").read_text())
        names = podman("pod", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", record["pod"]).split()
        roots, conmons = {}, []
        for name in names:
            pid = int(podman("inspect", "--format", "{{.State.Pid}}", name))
            conmons.append(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))
            roots["infra" if name.endswith("-infra") else name.removeprefix(record["pod"] + "-")] = pid
    tree = children()
    parts = {}
    for name, pid in roots.items():
        pids, todo = [], [pid]
        while todo:
            current = todo.pop()
            if current not in pids:
                pids.append(current)
                todo.extend(tree.get(current, []))
        parts[name] = pids
    if launcher == "podman":
        parts["conmon"] = conmons
    return parts


def run_variant(label: str, args, pythonpath: Path | None) -> dict:
    base = Path(tempfile.mkdtemp(prefix="hebi-bs-", dir="/tmp"))
    env = dict(args.env)
    try:
        config_path = local_system.write_config(base, nginx="required", launcher=args.launcher)
        config = yaml.safe_load(config_path.read_text())
        if pythonpath is not None:
            config["launcher"]["local"]["nginx_template"] = str(pythonpath / "web/nginx/session.conf.template")
            env["PYTHONPATH"] = os.pathsep.join(str(pythonpath / p) for p in PACKAGES)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        users = {f"bench{i}": f"bench-password-{i:02d}" for i in range(args.sessions)}
        sample = base / "sample"
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample_data.py"), str(sample / "scan.nxs"),
                        "--process-list", str(sample / "list.nxs")], check=True, capture_output=True)
        for user, password in users.items():
            local_system.add_user(config_path, user, password)
            folders = local_system.user_folders(config_path, user)
            shutil.copy(sample / "scan.nxs", folders["data"] / "scan.nxs")
            shutil.copy(sample / "list.nxs", folders["processing"] / "list.nxs")
        gateway = local_system.Gateway(config_path, env=env)
        try:
            url = gateway.url.rstrip("/")
            times = {user: first_answers(url, user, password) for user, password in users.items()}
            memories = {"browsed": measure(args, config, users)}
            for user, password in users.items():
                http = login(url, user, password)
                times[user].update(timed(http, url, EDIT))
                burst(url, http)
            memories["used"] = measure(args, config, users)
        except Exception:
            for log in sorted(base.glob("**/*.log")):
                print(f"==> {log.relative_to(base)} <==\n" + "\n".join(log.read_text().splitlines()[-15:]),
                      file=sys.stderr)
            raise
        finally:
            gateway.stop()
            local_system.stop_all_sessions(config_path)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"label": label, "times": times, "memory": memories}


def measure(args, config: dict, users: dict) -> dict:
    """After ``args.idle`` seconds of quiet: each user's session, part by part, process by process."""
    time.sleep(args.idle)
    return {user: {name: [m for m in map(memory, pids) if m]
                   for name, pids in session_processes(args.launcher, config, user).items()}
            for user in users}


def login(url: str, user: str, password: str) -> requests.Session:
    http = requests.Session()
    answer = http.post(f"{url}/gateway/login", data={"username": user, "password": password, "next": "/"},
                       allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 303, answer.text
    return http


def timed(http: requests.Session, url: str, requests_: tuple) -> dict[str, float]:
    times = {}
    for name, path in requests_:
        start = time.perf_counter()
        answer = http.get(url + path, timeout=TIMEOUT)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        times[f"first {name}"] = time.perf_counter() - start
    return times


def first_answers(url: str, user: str, password: str) -> dict[str, float]:
    """Seconds from login to the app shell, then of each first request of browsing."""
    start = time.perf_counter()
    http = login(url, user, password)
    # Until the session answers, / is the gateway's "starting" page (which a browser reloads each second):
    # poll it more often, so the figure is the session's start rather than the page's reload period.
    deadline = time.monotonic() + TIMEOUT
    while True:
        answer = http.get(f"{url}/", timeout=TIMEOUT)
        if answer.status_code == 200 and '<div id="root">' in answer.text:
            break
        assert answer.status_code in (200, 503) and time.monotonic() < deadline, answer.text[:300]
        time.sleep(0.02)
    return {"login -> app shell": time.perf_counter() - start, **timed(http, url, BROWSE)}


def burst(url: str, http: requests.Session, clients: int = 6, rounds: int = 5) -> None:
    """What a browser does next: several connections at once (it opens six per host), so the services'
    threads and their memory are as they will be in use, not only after one request at a time."""
    cookies = http.cookies

    def client(_: int) -> None:
        with requests.Session() as own:
            own.cookies.update(cookies)
            for _ in range(rounds):
                for _, path in BURST_REQUESTS:
                    answer = own.get(url + path, timeout=TIMEOUT)
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))


def summarise(per_user_memory: dict) -> dict:
    """Median over sessions, per part and for the whole session: rss, pss, uss, processes, threads."""
    parts: dict[str, dict[str, list[float]]] = {}
    for per_user in per_user_memory.values():
        total = dict.fromkeys(("rss", "pss", "uss", "processes", "threads"), 0.0)
        for name, processes in per_user.items():
            figures = {key: sum(p[key] for p in processes) for key in ("rss", "pss", "uss", "threads")}
            figures["processes"] = len(processes)
            for key, value in figures.items():
                parts.setdefault(name, {}).setdefault(key, []).append(value)
                total[key] += value
        for key, value in total.items():
            parts.setdefault("session", {}).setdefault(key, []).append(value)
    return {name: {key: statistics.median(values) for key, values in figures.items()}
            for name, figures in parts.items()}


def report(results: list[dict], args) -> None:
    labels = [r["label"] for r in results]
    ratio = len(results) == 2
    print(f"\nbench/session: launcher {args.launcher}, {args.sessions} sessions, measured after {args.idle:.0f} s "
          "idle; medians over sessions; MB = 10^6 bytes" + (f"; ratio = {labels[1]} / {labels[0]}" if ratio else ""))
    for phase, what in (("browsed", "after browsing (Files, Viewer)"),
                        ("used", "after editing a process list, the Jobs page and a burst of parallel reads")):
        summaries = [summarise(r["memory"][phase]) for r in results]
        print(f"\nidle memory {what} (MB)")
        print(f"{'part':11}{'':14}" + "".join(f"{k:>9}" for k in ("RSS", "PSS", "USS")) + "  processes/threads")
        for part in summaries[0]:
            for label, summary in zip(labels, summaries):
                f = summary.get(part, {})
                print(f"{part:11}{label:14}" + "".join(f"{f.get(k, float('nan')):9.1f}" for k in ("rss", "pss", "uss"))
                      + f"  {f.get('processes', 0):.0f}/{f.get('threads', 0):.0f}")
            if ratio and part == "session":
                before, after = (s["session"] for s in summaries)
                print(f"{'':11}{'ratio':14}" + "".join(f"{after[k] / before[k]:9.2f}" for k in ("rss", "pss", "uss")))
    for result in results:
        user, parts = next(iter(result["memory"]["used"].items()))
        print(f"\n{result['label']}: the processes of {user}'s session after use (MB)")
        for name, processes in parts.items():
            for p in processes:
                print(f"  {name:11}{p['rss']:8.1f} RSS{p['pss']:8.1f} PSS{p['uss']:8.1f} USS{p['threads']:4d} threads"
                      f"  {p['command']}")
    times = [{name: statistics.median(t[name] for t in r["times"].values()) for name in next(iter(r["times"].values()))}
             for r in results]
    print("\nfirst answers (ms, median over sessions)")
    print(f"{'what':28}" + "".join(f"{label:>14}" for label in labels) + (f"{'ratio':>10}" if ratio else ""))
    for name in times[0]:
        values = [t[name] * 1000 for t in times]
        print(f"{name:28}" + "".join(f"{v:14.1f}" for v in values) + (f"{values[1] / values[0]:10.2f}" if ratio else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launcher", choices=["local", "podman"], default="local")
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5, help="seconds the sessions sit idle before measuring")
    parser.add_argument("--compare", metavar="REV", help="also run the tree at this git revision, first")
    parser.add_argument("--env", action="append", default=[], type=lambda s: tuple(s.split("=", 1)),
                        metavar="NAME=VALUE", help="set in the gateway's environment (sessions inherit it "
                        "under the local launcher), e.g. GUNICORN_CMD_ARGS=--preload to try a setting")
    args = parser.parse_args()
    results = []
    if args.compare:
        with tempfile.TemporaryDirectory(prefix="hebi-bs-rev-") as folder:
            results.append(run_variant(args.compare[:12], args, extract_revision(args.compare, Path(folder))))
    results.append(run_variant("current", args, None))
    report(results, args)


if __name__ == "__main__":
    main()
