"""The ``local`` launcher: a user's session as processes on this machine.

Per user, under ``launcher.local.state_dir/<user>/``: the parts of the session contract
(pod_launcher.spec): the API and the dataserver (one process each, hebi_common.serve, on a Unix socket), and nginx on a third
socket serving the web app and routing /api/ and /data/ with the session image's own config file. Where
nginx is missing and allowed to be (``nginx: auto``), a small Python router serves the same routes
instead. The folder is 0700, so only this account reaches the sockets; the record ``session.json`` holds
the pids and the session secret for the gateway and the CLI.

Sessions run as the account that runs the launcher (the gateway's). Mapping users to their own UNIX
accounts needs root and is the job of the container backends (podman, kubernetes: runAsUser).
"""
from __future__ import annotations

import http.client
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hebi_common.config import HebiConfig, require_real
from hebi_common.identity import Identity, check_username, sign_identity
from hebi_common.session import StateFolderError, session_state_dir

from .base import Launcher, LauncherError, SessionInfo, SessionRecords
from .nginx import find_mime_types, find_nginx, render_session_config
from .spec import SESSION, session_environment

SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin
#: The socket (and log) name of each service of the contract.
SOCKETS = {"api": "api", "dataserver": "data"}


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("session", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of a live ``pid``, so a recycled pid is not mistaken for our process.
    None when the process is gone or a zombie (which is reaped here if it is our child)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return None
    return fields[19]


def _alive(process: dict) -> bool:
    return _process_start_time(process["pid"]) == process["start"]


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, config: HebiConfig, config_path: str | None = None):
        self.config = config
        self.settings = config.launcher.local
        self.config_path = config_path or os.environ.get("HEBI_CONFIG", "")
        self.state_dir = Path(self.settings.state_dir)
        self.records = SessionRecords(self.state_dir)

    # -- the interface ------------------------------------------------------------------------------

    def start(self, identity: Identity, profile: str | None = None) -> SessionInfo:
        user = check_username(identity.user)
        self.check_profile(profile)
        current = self.status(user)
        if current.state == "running":
            return current
        if current.state == "failed":
            self.stop(user)
        folder = self.records.folder(user)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        for name in ("logs", "nginx"):
            (folder / name).mkdir(exist_ok=True)
        sockets = {name: folder / f"{name}.sock" for name in ("api", "data", "session")}
        too_long = [str(p) for p in sockets.values() if len(str(p)) > SOCKET_PATH_MAX]
        if too_long:
            raise LauncherError(f"socket path too long for this OS ({too_long[0]}): "
                                "choose a shorter launcher.local.state_dir")
        for path in sockets.values():
            path.unlink(missing_ok=True)

        try:
            state_dir = session_state_dir(self.config, user, identity.home, folder)
        except StateFolderError as err:
            raise LauncherError(f"the session of {user} was not started: {err}") from None
        secret = secrets.token_urlsafe(32)
        env = self._session_environment(identity, secret, state_dir)
        python = self.settings.python or sys.executable
        processes: dict[str, int] = {}
        try:
            for part in SESSION.services:
                service = SOCKETS[part.name]
                processes[service] = self._spawn(folder, service, part.command(f"unix:{sockets[service]}", python),
                                                 dict(env, **dict(part.env)))
            router, processes["router"] = self._start_router(folder, sockets, python, env)
        except Exception:
            self._kill(processes)
            raise
        record = {"user": user, "backend": self.name, "secret": secret, "started_at": time.time(),
                  "url": f"unix:{sockets['session']}", "router": router,
                  "processes": {name: {"pid": pid, "start": _process_start_time(pid)}
                                for name, pid in processes.items()},
                  "identity": identity.to_json()}
        self.records.write(user, record)
        self._wait_until_answering(user, identity, sockets["session"], secret, processes)
        return self.status(user)

    def stop(self, user: str) -> bool:
        record = self.records.read(check_username(user))
        if record is None:
            return False
        self._kill({name: p["pid"] for name, p in record["processes"].items() if _alive(p)})
        self.records.remove(user)
        for name in ("api", "data", "session"):
            (self.records.folder(user) / f"{name}.sock").unlink(missing_ok=True)
        return True

    def status(self, user: str) -> SessionInfo:
        record = self.records.read(check_username(user))
        if record is None:
            return SessionInfo(user=user, state="stopped", backend=self.name)
        dead = [name for name, p in record["processes"].items() if not _alive(p)]
        if dead:
            return SessionInfo(user=user, state="failed", backend=self.name, started_at=record["started_at"],
                               detail=f"{', '.join(sorted(dead))} exited; see pod_launcher logs -u {user}")
        return SessionInfo(user=user, state="running", url=record["url"], secret=record["secret"],
                           started_at=record["started_at"], backend=self.name,
                           detail=f"router: {record.get('router', 'nginx')}")

    def list(self) -> list[SessionInfo]:
        return [self.status(user) for user in self.records.users()]

    def logs(self, user: str, lines: int = 100) -> str:
        folder = self.records.folder(check_username(user)) / "logs"
        parts = []
        for log in sorted(folder.glob("*.log")) if folder.is_dir() else []:
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"==> {log.name} <==\n" + "\n".join(tail))
        return "\n\n".join(parts) if parts else f"no logs for {user}"

    # -- the pieces ---------------------------------------------------------------------------------

    def _session_environment(self, identity: Identity, secret: str, state_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEBI_SESSION_")}
        env.update(session_environment(identity, str(state_dir),
                                       os.path.abspath(self.config_path) if self.config_path else "",
                                       secret=secret))
        return env

    def _spawn(self, folder: Path, name: str, argv: list[str], env: dict[str, str]) -> int:
        log = open(folder / "logs" / f"{name}.log", "ab")
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                       cwd=folder, start_new_session=True)
        except OSError as err:
            raise LauncherError(f"cannot start the session's {name}: {err}") from None
        finally:
            log.close()
        return process.pid

    def _start_router(self, folder: Path, sockets: dict[str, Path], python: str,
                      env: dict[str, str]) -> tuple[str, int]:
        """Start nginx (or, where allowed, the Python router) in front of the services: (kind, pid)."""
        mode = "required" if require_real() else self.settings.nginx
        nginx = find_nginx(self.settings.nginx_binary) if mode != "off" else None
        web_root = self.settings.web_root
        if not web_root or not Path(web_root, "index.html").is_file():
            raise LauncherError(f"launcher.local.web_root ({web_root or 'not set'}) holds no built web app "
                                "(index.html); build it with: make -C web build")
        if nginx is None and mode == "required":
            raise LauncherError("nginx is required (launcher.local.nginx: required, or HEBI_REQUIRE_REAL=1) "
                                "but not installed; install it with scripts/install-system.sh nginx")
        if nginx is None:
            return "python", self._spawn(folder, "router", [
                python, "-m", "pod_launcher.session_router", "--listen", f"unix:{sockets['session']}",
                "--api", f"unix:{sockets['api']}", "--data", f"unix:{sockets['data']}",
                "--web-root", web_root], env)
        template_path = self.settings.nginx_template
        try:
            template = Path(template_path).read_text()
        except OSError:
            raise LauncherError(f"launcher.local.nginx_template ({template_path or 'not set'}) cannot be read; "
                                "it is web/nginx/session.conf.template") from None
        mime_types = find_mime_types()
        if mime_types is None:
            raise LauncherError("nginx's mime.types not found (is the nginx package complete?)")
        prefix = folder / "nginx"
        conf = render_session_config(template, {
            "LISTEN": f"unix:{sockets['session']}", "API": f"unix:{sockets['api']}",
            "DATA": f"unix:{sockets['data']}", "WEB_ROOT": str(Path(web_root).resolve()),
            "PREFIX": str(prefix), "MIME_TYPES": mime_types,
            "BODY_TIMEOUT": str(math.ceil(self.config.gateway.body_idle_timeout))})
        (prefix / "nginx.conf").write_text(conf)
        argv = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(folder / "logs" / "nginx.log")]
        if os.geteuid() == 0:
            # nginx started by root hands its workers to 'nobody', who cannot enter the 0700 session
            # folder; keep them as the account that owns it.
            argv += ["-g", "user root root;"]
        return "nginx", self._spawn(folder, "nginx", argv, env)

    def _wait_until_answering(self, user: str, identity: Identity, sock: Path, secret: str,
                              processes: dict[str, int]) -> None:
        deadline = time.monotonic() + self.config.launcher.start_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            exited = [name for name, pid in processes.items() if _process_start_time(pid) is None]
            if exited:
                tail = self.logs(user, 15)
                self.stop(user)
                raise LauncherError(f"the session of {user} failed to start: {', '.join(exited)} exited\n{tail}")
            try:
                last = ""
                for path in SESSION.readiness_paths:
                    connection = _UnixHTTPConnection(str(sock), timeout=2)
                    connection.request("GET", path, headers={"X-Hebi-Identity": sign_identity(identity, secret)})
                    answer = connection.getresponse()
                    answer.read()
                    connection.close()
                    if answer.status != 200:
                        last = f"{path}: HTTP {answer.status}"
                        break
                if not last:
                    return
            except OSError as err:
                last = str(err)
            time.sleep(0.1)
        tail = self.logs(user, 15)
        self.stop(user)
        raise LauncherError(f"the session of {user} did not answer within "
                            f"{self.config.launcher.start_timeout:.0f} s ({last})\n{tail}")

    @staticmethod
    def _kill(processes: dict[str, int], grace: float = 10.0) -> None:
        for pid in processes.values():
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        remaining = dict(processes)
        while remaining and time.monotonic() < deadline:
            remaining = {n: p for n, p in remaining.items() if _process_start_time(p) is not None}
            time.sleep(0.05)
        for pid in remaining.values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _process_start_time(pid)  # reaps it if it is our child
