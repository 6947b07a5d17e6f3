"""``make demo``: hebi on this machine with a sample scan and a demo account.

Prints the URL and a login, then runs until Ctrl-C, which stops the gateway and every session it started.
Everything lives in .demo/ of the repository (or HEBI_DEMO_DIR); a new random password is set on every start.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_system  # noqa: E402
from make_sample_data import write_nxtomo, write_sample_process_list  # noqa: E402

USER = "demo"


def free_port(preferred: int = 8000) -> int:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # A shell starts a background job of a script ('demo.py &') with SIGINT ignored, and Python keeps
    # an inherited SIG_IGN: install both handlers explicitly, so Ctrl-C and kill stop the demo alike.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    base = Path(os.environ.get("HEBI_DEMO_DIR") or local_system.REPO / ".demo")
    # HEBI_LAUNCHER=podman: the same demo with each session in containers (docs/admin.md).
    launcher = os.environ.get("HEBI_LAUNCHER", "local")
    if launcher not in ("local", "podman"):
        print(f"HEBI_LAUNCHER is local or podman, not {launcher!r}", file=sys.stderr)
        return 2
    # One user on one's own machine: their code may run as the account running the demo.
    config = local_system.write_config(base, port=free_port(), launcher=launcher,
                                       unisolated_code=launcher == "local")
    gateway = None
    try:
        password = secrets.token_urlsafe(9)
        local_system.add_user(config, USER, password)
        folders = local_system.user_folders(config, USER)
        sample = folders["data"] / "sample_tomo.nxs"
        if not sample.exists():
            write_nxtomo(sample)
        first_list = folders["processing"] / "sample_reconstruction.nxs"
        if not first_list.exists():
            write_sample_process_list(first_list)
        local_system.hand_over(config, USER)
        from pod_launcher.nginx import find_nginx
        if launcher == "local" and find_nginx() is None:
            print("note: nginx is not installed (installing it needs root: scripts/install-system.sh nginx); "
                  "sessions use hebi's built-in router instead", flush=True)
        gateway = local_system.Gateway(config)
        print(f"URL: {gateway.url}")
        print(f"Login: {USER} {password}")
        print(f"(Ctrl-C stops hebi; logs are in {base})", flush=True)
        gateway.process.wait()
        print("the gateway stopped by itself; see .demo/gateway.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping hebi...", flush=True)
        return 0
    finally:
        if gateway is not None:
            gateway.stop()
        local_system.stop_all_sessions(config)


if __name__ == "__main__":
    sys.exit(main())
