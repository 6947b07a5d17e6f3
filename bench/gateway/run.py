"""bench/gateway: hebi's gateway against configurable-http-proxy (CHP), and a big body end to end.

Throughput, in one run on this machine: a trivial Node upstream; CHP routing to it (no login at all);
hebi's gateway (the real app: login cookie checked and identity signed for every request) routing to
it, once proxying itself (Python) and once behind its nginx front (gateway.front, the Python gateway
answering nginx's route checks). wrk drives each in turn for the same time and connections, rounds
alternating so noise falls on all. Prints requests/s, p99 latency, and the ratios to CHP (issue 12's
goals: the front at least 3x CHP's rate, its p99 no worse than CHP's).

Big body: the real system (scripts/local_system.py, a local session: its nginx and dataserver) serves
one 2048x2048 float32 frame as h5web asks for it (format=bin), through the Python gateway and through
the front, against an in-process h5py read of the same frame (goal: at most 2x). Beside them, the floor
any proxied path has here: nginx sending the same 16 MiB from a file (sendfile), alone and behind one
nginx proxy hop, as the front is in front of a session.

    .venv/bin/python bench/gateway/run.py [--seconds 5] [--connections 10] [--rounds 3] [--frames 30]
Needs: wrk and nginx (scripts/install-system.sh wrk nginx), node, and `npm install` in bench/gateway
(done if missing), and the web app built (make demo or make test build it).
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

config = HebiConfig.model_validate({"gateway": {"state_dir": sys.argv[3],
                                               "front": {"enabled": sys.argv[4] == "front"}}})
serve_app(create_app(config, FixedSession()), "127.0.0.1", int(sys.argv[1]))
'''


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, seconds: int, connections: int, headers: list[str]) -> tuple[float, float, int]:
    """Requests per second, the p99 latency in ms, and the socket errors wrk saw (printed, not hidden)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *sum((["-H", h] for h in headers), []), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"error answers under load at {url}:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return (float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), float(p99.group(1)) * UNITS[p99.group(2)],
            sum(int(n) for n in errors.groups()) if errors else 0)


def login(url: str, user: str, password: str) -> str:
    import requests
    answer = requests.post(f"{url}/gateway/login", allow_redirects=False, data={"username": user, "password": password})
    return answer.cookies["hebi_session"]


def throughput(args) -> None:
    state = Path(tempfile.mkdtemp(prefix="hebi-bench-gw-"))
    ports = {name: free_port() for name in ("upstream", "chp", "chp_api", "hebi", "front")}
    upstream = f"http://127.0.0.1:{ports['upstream']}"
    processes = []
    try:
        processes.append(subprocess.Popen(["node", str(HERE / "backend.js"), str(ports["upstream"])]))
        processes.append(subprocess.Popen(
            [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy"), "--ip", "127.0.0.1",
             "--port", str(ports["chp"]), "--api-ip", "127.0.0.1", "--api-port", str(ports["chp_api"]),
             "--default-target", upstream, "--log-level", "warn"],
            env=dict(os.environ, CONFIGPROXY_AUTH_TOKEN="bench"), stdout=subprocess.DEVNULL))
        for name in ("hebi", "front"):
            (state / name).mkdir()
            processes.append(subprocess.Popen([sys.executable, "-c", GATEWAY, str(ports[name]), upstream,
                                               str(state / name), name], stdout=subprocess.DEVNULL))
        for port in ports.values():
            wait_for(port)

        import requests

        from hebi_gateway.accounts import UsersFile
        cookies = {}
        for name in ("hebi", "front"):
            UsersFile(state / name / "users.yaml").set_password("alice", "bench-password")
            url = f"http://127.0.0.1:{ports[name]}"
            cookies[name] = f"Cookie: hebi_session={login(url, 'alice', 'bench-password')}"
            assert requests.get(f"{url}/x", headers={"Cookie": cookies[name][8:]}).text == "ok"
        time.sleep(2)  # the front's reload for the new session's pool is over before wrk begins

        runs: dict[str, list[tuple[float, float, int]]] = {"direct": [], "chp": [], "hebi": [], "front": []}
        for _ in range(args.rounds):
            runs["direct"].append(wrk(upstream + "/", args.seconds, args.connections, []))
            runs["chp"].append(wrk(f"http://127.0.0.1:{ports['chp']}/", args.seconds, args.connections, []))
            for name in ("hebi", "front"):
                runs[name].append(wrk(f"http://127.0.0.1:{ports[name]}/", args.seconds, args.connections, [cookies[name]]))
        med = statistics.median
        rate = {name: med(r for r, _, _ in found) for name, found in runs.items()}
        p99 = {name: med(p for _, p, _ in found) for name, found in runs.items()}
        errors = {name: sum(e for _, _, e in found) for name, found in runs.items()}
        print(f"gateway throughput, {args.connections} connections, {args.rounds} rounds of {args.seconds} s "
              f"(medians)")
        print(f"  {'':44} {'requests/s':>11} {'p99 ms':>8} {'socket errors (all rounds)':>27}")
        for name, label in (("direct", "upstream direct"), ("chp", "configurable-http-proxy (no login)"),
                            ("hebi", "hebi gateway alone (cookie + identity)"),
                            ("front", "hebi behind its nginx front (same checks)")):
            print(f"  {label:44} {rate[name]:11.0f} {p99[name]:8.2f} {errors[name]:27d}")
        print(f"  ratio front / CHP   {rate['front'] / rate['chp']:6.2f}   (goal >= 3)")
        print(f"  ratio gateway alone / CHP {rate['hebi'] / rate['chp']:6.2f}")
        print(f"  p99 front / CHP     {p99['front'] / p99['chp']:6.2f}   (goal <= 1)")
    finally:
        for process in reversed(processes):  # the gateways first, so they never see their upstream vanish
            process.terminate()
            process.wait(10)
        shutil.rmtree(state, ignore_errors=True)


SIDE = 2048


FLOOR_NGINX = """daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    server {{ listen 127.0.0.1:{static}; root {dir}/www; }}
    upstream static {{ server 127.0.0.1:{static}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://static;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # As the session's nginx and the front do: unbuffered, moving 1 MiB per read.
            proxy_buffering off;
            proxy_buffer_size 1m;
            proxy_buffers 4 1m;
            proxy_busy_buffers_size 1m;
        }}
    }}
}}
"""


def start_floor(folder: Path, frame: bytes) -> tuple[subprocess.Popen, dict[str, int]]:
    """nginx serving ``frame`` as a static file on one port, and through one proxy hop on another."""
    from pod_launcher.nginx import find_nginx
    (folder / "www").mkdir(parents=True)
    folder.chmod(0o755)  # run as root, nginx's workers are nobody: they must reach the file
    (folder / "www" / "frame.bin").write_bytes(frame)
    ports = {"static": free_port(), "proxy": free_port()}
    (folder / "nginx.conf").write_text(FLOOR_NGINX.format(dir=folder, **ports))
    process = subprocess.Popen([find_nginx(), "-c", str(folder / "nginx.conf"), "-p", str(folder)])
    for port in ports.values():
        wait_for(port)
    return process, ports


def big_body(args) -> None:
    """One 2048x2048 float32 frame through gateway and session (each way) against in-process h5py."""
    import http.client

    import h5py
    import numpy as np

    sys.path.insert(0, str(HERE.parent.parent / "scripts"))
    import local_system

    base = Path(tempfile.mkdtemp(prefix="hebi-bench-big-"))
    gateways = {}
    floor, floor_dir = None, Path(tempfile.mkdtemp(prefix="hebi-bench-floor-"))
    try:
        users = base / "users"
        data = users / "alice" / "data"
        data.mkdir(parents=True)
        path = data / "frames.h5"
        rng = np.random.default_rng(1)
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=rng.random((args.frames, SIDE, SIDE), dtype=np.float32),
                             chunks=(1, SIDE, SIDE))
        for name, front in (("gateway", False), ("front", True)):
            config_path = local_system.write_config(base / name, users_root=users, front=front)
            local_system.add_user(config_path, "alice", "bench-password")
            gateways[name] = local_system.Gateway(config_path, timeout=60)

        query = "/data/data?file=data/frames.h5&path=/data&format=bin&dtype=safe&selection={i},:,:"
        h5 = h5py.File(path, "r", locking=False)
        times: dict[str, list[float]] = {"h5py": [], "gateway": [], "front": [], "static": [], "proxy": []}
        connections = {}
        floor, floor_ports = start_floor(floor_dir, h5["data"][0].tobytes())
        for name, port in floor_ports.items():
            connections[name] = (http.client.HTTPConnection("127.0.0.1", port, timeout=120), {})
        for name, gateway in gateways.items():
            cookie = login(gateway.url.rstrip("/"), "alice", "bench-password")
            host, port = gateway.url.rstrip("/").removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=120)
            connections[name] = (connection, {"Cookie": f"hebi_session={cookie}", "Accept": "application/octet-stream"})
            deadline = time.monotonic() + 120
            while True:  # the session starts with the first request
                connection.request("GET", query.format(i=0), headers=connections[name][1])
                answer = connection.getresponse()
                body = answer.read()
                if answer.status == 200 and len(body) == SIDE * SIDE * 4:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: {answer.status} {body[:300]!r}")
                time.sleep(0.5)
        for _ in range(args.rounds):
            for i in range(args.frames):
                h5["data"][i]  # warm: every way reads from the page cache
                start = time.perf_counter()
                frame = h5["data"][i]
                times["h5py"].append(time.perf_counter() - start)
                for name, (connection, headers) in connections.items():
                    start = time.perf_counter()
                    connection.request("GET", "/frame.bin" if name in floor_ports else query.format(i=i), headers=headers)
                    answer = connection.getresponse()
                    body = answer.read()
                    times[name].append(time.perf_counter() - start)
                    assert answer.status == 200 and len(body) == SIDE * SIDE * 4
                    if name not in floor_ports:
                        assert np.array_equal(np.frombuffer(body, "<f4").reshape(SIDE, SIDE), frame)
        med = {name: statistics.median(found) * 1000 for name, found in times.items()}
        print(f"\nbig body: one 2048x2048 float32 frame (16 MiB, format=bin), median of {len(times['h5py'])} reads")
        print(f"  h5py in-process ds[i]                          {med['h5py']:7.1f} ms")
        print(f"  gateway alone -> session nginx -> dataserver    {med['gateway']:7.1f} ms   "
              f"{med['gateway'] / med['h5py']:5.2f}x h5py")
        print(f"  nginx front -> session nginx -> dataserver      {med['front']:7.1f} ms   "
              f"{med['front'] / med['h5py']:5.2f}x h5py   (goal <= 2)")
        print("  the floor of a proxied path here, the same 16 MiB as a file:")
        print(f"    nginx sendfile, no proxy                     {med['static']:7.1f} ms   "
              f"{med['static'] / med['h5py']:5.2f}x h5py")
        print(f"    one nginx proxy hop -> nginx sendfile        {med['proxy']:7.1f} ms   "
              f"{med['proxy'] / med['h5py']:5.2f}x h5py")
    finally:
        if floor is not None:
            floor.terminate()
            floor.wait()
        shutil.rmtree(floor_dir, ignore_errors=True)
        for gateway in gateways.values():
            local_system.stop_all_sessions(gateway.config_path)
            gateway.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="hebi gateway vs configurable-http-proxy, and a big body")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=30, help="frames of the big-body dataset (16 MiB each)")
    parser.add_argument("--only", choices=("throughput", "big-body"))
    args = parser.parse_args()
    for tool in ("wrk", "node", "npm", "nginx"):
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            print(f"bench/gateway needs {tool}", file=sys.stderr)
            return 2
    if not (HERE / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)
    if args.only != "big-body":
        throughput(args)
    if args.only != "throughput":
        big_body(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
