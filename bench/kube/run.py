"""bench/kube: the time from login to the app shell with ``launcher.backend: kubernetes`` through the fake
cluster (tests/fakekube: its API server, and its kubelet running each pod with podman), the images
present, beside the podman launcher measured in the same run as the local anchor.

Each launcher gets its own system made the way the tests make it (scripts/local_system.py: a
configuration, the accounts, the gateway; ``use_kubernetes`` for the cluster). Users log in one after
another with requests and do what the browser does: post the login form, load ``/`` (the starting
page), follow ``/gateway/progress`` until its ``end`` event, load ``/`` again, and stop the clock when
the app shell's HTML arrives. The kubernetes launcher's own steps (from the pod's events: scheduled,
started, ready) are read from the stream's last list, to say where the time goes.

    sudo .venv/bin/python bench/kube/run.py [--users 3]

Needs root and podman (the sessions run as their users' uids). Quote the median against the 10-30 s
that a KubeSpawner start typically takes (the issue's anchor), and the ratio against podman here.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]
import local_system  # noqa: E402
from fakekube import FakeCluster  # noqa: E402

APP_SHELL = '<div id="root">'
PASSWORD = "bench-password-of-a-user"


def login_to_shell(url: str, user: str, limit: float = 300) -> dict:
    """Seconds from posting the login form to the app shell's HTML, with the steps the stream showed."""
    http = requests.Session()
    began = time.monotonic()
    answer = http.post(f"{url}/gateway/login", data={"username": user, "password": PASSWORD, "next": "/"},
                       allow_redirects=False, timeout=30)
    if answer.status_code != 303:
        raise RuntimeError(f"login of {user}: {answer.status_code} {answer.text[:200]}")
    steps: list[dict] = []
    while True:
        page = http.get(f"{url}/", headers={"Accept": "text/html"}, timeout=limit)
        if APP_SHELL in page.text:
            break
        if page.status_code != 200 or time.monotonic() - began > limit:
            raise RuntimeError(f"the session of {user} did not start: {page.status_code} {page.text[-300:]}")
        with http.get(f"{url}/gateway/progress", stream=True, timeout=limit) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("data: ") and '"steps"' in line:
                    steps = json.loads(line[len("data: "):])["steps"]
                elif line == "event: end":
                    break
    elapsed = time.monotonic() - began
    at = {s["step"]: s["at"] for s in steps}
    ready = at["ready"] - at["requested"] if {"ready", "requested"} <= at.keys() else None
    return {"user": user, "seconds": elapsed, "requested_to_ready": ready, "steps": [s["step"] for s in steps]}


def measure(launcher: str, users: int, base: Path) -> list[dict]:
    with contextlib.ExitStack() as stack:
        config_path = local_system.write_config(base / launcher, launcher="podman" if launcher == "podman" else "local")
        if launcher == "kubernetes":
            cluster = stack.enter_context(FakeCluster(base / "cluster"))
            local_system.use_kubernetes(config_path, cluster.kubeconfig, instance="bench")
        names = [f"bench{i}" for i in range(users)]
        for name in names:
            local_system.add_user(config_path, name, PASSWORD)
            local_system.hand_over(config_path, name)
        gateway = local_system.Gateway(config_path)
        stack.callback(local_system.stop_all_sessions, config_path)
        stack.callback(gateway.stop)
        return [login_to_shell(gateway.url.rstrip("/"), name) for name in names]


def summary(runs: list[dict]) -> dict:
    seconds = [r["seconds"] for r in runs]
    # Only a backend with its own progress has a real "ready" time (podman's default progress has none).
    ready = [r["requested_to_ready"] for r in runs if r["requested_to_ready"] and "scheduled" in r["steps"]]
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds),
            "requested_to_ready_median": statistics.median(ready) if ready else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3, help="users logging in one after another, per launcher")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("podman") is None:
        sys.exit("bench/kube needs root and podman (scripts/install-system.sh podman)")
    local_system.images()  # built (or found) before any clock starts: "with the images present"
    base = Path(tempfile.mkdtemp(prefix="hebi-bk-"))
    try:
        results = {launcher: measure(launcher, args.users, base) for launcher in ("podman", "kubernetes")}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    sums = {launcher: summary(runs) for launcher, runs in results.items()}
    print(f"login -> app shell, {args.users} users one after another, images present")
    print(f"{'launcher':<12}{'median s':>10}{'min s':>8}{'max s':>8}{'requested->ready s':>20}")
    for launcher, row in sums.items():
        ready = row["requested_to_ready_median"]
        print(f"{launcher:<12}{row['median']:>10.2f}{row['min']:>8.2f}{row['max']:>8.2f}"
              f"{(f'{ready:.2f}' if ready is not None else '-'):>20}")
    ratio = sums["kubernetes"]["median"] / sums["podman"]["median"]
    print(f"kubernetes / podman (median): {ratio:.2f}x; KubeSpawner typically 10-30 s, "
          f"{10 / sums['kubernetes']['median']:.1f}-{30 / sums['kubernetes']['median']:.1f}x longer")
    print("steps seen (kubernetes):", results["kubernetes"][0]["steps"])
    print(json.dumps({"runs": results, "summary": sums}, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()
