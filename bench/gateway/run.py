"""bench/gateway: authenticated throughput of hebi's gateway against configurable-http-proxy (CHP).

In one run, on this machine: a trivial Node upstream; CHP routing to it; hebi's gateway (the real app,
login cookie checked and identity signed on every request) routing to it. wrk drives each in turn for
the same time and connection count, alternating rounds so noise falls on both. Prints requests/s and
the ratio hebi / CHP (the later goal is >= 1.5).

    .venv/bin/python bench/gateway/run.py [--seconds 5] [--connections 10] [--rounds 3]
Needs: wrk (scripts/install-system.sh wrk), node, and `npm install` in bench/gateway (done if missing).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


GATEWAY = r'''
import sys
from hebi_common.config import HebiConfig
from hebi_gateway.app import create_app
from hebi_gateway.cli import serve_app
from pod_launcher import Launcher, SessionInfo

class FixedSession(Launcher):
    """Every user's session is the benchmark upstream: measures the gateway, not session start-up."""
    def start(self, identity): return self.status(identity.user)
    def status(self, user): return SessionInfo(user=user, state="running", url=sys.argv[2], secret="bench")
    def stop(self, user): return False
    def list(self): return []
    def logs(self, user, lines=100): return ""

config = HebiConfig.model_validate({"gateway": {"state_dir": sys.argv[3]}})
serve_app(create_app(config, FixedSession()), "127.0.0.1", int(sys.argv[1]))
'''


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> float:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *sum((["-H", h] for h in headers), []), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load at {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description="hebi gateway vs configurable-http-proxy")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("wrk", "node", "npm"):
        if not shutil.which(tool):
            print(f"bench/gateway needs {tool}", file=sys.stderr)
            return 2
    if not (HERE / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)

    state = Path(tempfile.mkdtemp(prefix="hebi-bench-gw-"))
    ports = {name: free_port() for name in ("upstream", "chp", "chp_api", "hebi")}
    upstream = f"http://127.0.0.1:{ports['upstream']}"
    processes = []
    try:
        processes.append(subprocess.Popen(["node", str(HERE / "backend.js"), str(ports["upstream"])]))
        processes.append(subprocess.Popen(
            [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy"), "--ip", "127.0.0.1",
             "--port", str(ports["chp"]), "--api-ip", "127.0.0.1", "--api-port", str(ports["chp_api"]),
             "--default-target", upstream, "--log-level", "warn"],
            env=dict(os.environ, CONFIGPROXY_AUTH_TOKEN="bench"), stdout=subprocess.DEVNULL))
        processes.append(subprocess.Popen([sys.executable, "-c", GATEWAY, str(ports["hebi"]), upstream, str(state)],
                                          stdout=subprocess.DEVNULL))
        for port in ports.values():
            wait_for(port)

        import requests

        from hebi_gateway.accounts import UsersFile
        UsersFile(state / "users.yaml").set_password("alice", "bench-password")
        login = requests.post(f"http://127.0.0.1:{ports['hebi']}/gateway/login", allow_redirects=False,
                              data={"username": "alice", "password": "bench-password"})
        cookie = f"Cookie: hebi_session={login.cookies['hebi_session']}"
        assert requests.get(f"http://127.0.0.1:{ports['hebi']}/x", headers={"Cookie": cookie[8:]}).text == "ok"

        direct, chp, hebi = [], [], []
        for _ in range(args.rounds):
            direct.append(wrk(upstream + "/", args.seconds, args.connections, []))
            chp.append(wrk(f"http://127.0.0.1:{ports['chp']}/", args.seconds, args.connections, []))
            hebi.append(wrk(f"http://127.0.0.1:{ports['hebi']}/", args.seconds, args.connections, [cookie]))
        med = statistics.median
        print(f"gateway throughput, {args.connections} connections, {args.rounds} rounds of {args.seconds} s "
              f"(medians, requests/s)")
        print(f"  upstream direct                   {med(direct):9.0f}")
        print(f"  configurable-http-proxy (no auth) {med(chp):9.0f}")
        print(f"  hebi gateway (cookie + identity)  {med(hebi):9.0f}")
        print(f"  ratio hebi / CHP                  {med(hebi) / med(chp):9.2f}   (goal of a later issue: >= 1.5)")
    finally:
        for process in reversed(processes):  # the gateway first, so it never sees its upstream vanish
            process.terminate()
            process.wait(10)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
