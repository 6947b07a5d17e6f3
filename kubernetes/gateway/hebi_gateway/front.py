"""The gateway's nginx front (``gateway.front.enabled``): nginx carries every proxied request, the Python
gateway keeps logins, session starts, its pages and its APIs.

A Python proxy tops out at a few thousand requests a second (bench/gateway); nginx streams them with
no Python on the path. For each request nginx asks the gateway where it goes (``auth_request`` to
``/gateway/route``), and keeps the answer for ``front.cache_seconds`` under a key made of everything
the answer depends on: the client's address, Host, method, Origin and Sec-Fetch-Site, and every header
a login method reads (the cookie, Authorization, a trusted proxy's headers). The answer is the session's
address and the signed identity header. Whatever is not a plain "this login, this running session" is
answered 401, and nginx hands that request whole to the gateway, which does what it always did: the
login redirect, the starting page, the profile picker, the culled notice, a start limit's 429, the
refusal of a cross-site request. So does a session nginx cannot reach (502): the gateway restarts it.

The front and the gateway share two secrets, written only into the front's own configuration (0600):
``X-Hebi-Front`` marks the requests the front sends the gateway, which then takes the front's
``X-Hebi-Peer`` as the client's address (throttling, metrics_addresses and trusted proxies judge the real
client, not the front); ``X-Hebi-Route`` is sent only by the front's internal route check, and
``/gateway/route`` answers nobody else. The gateway then listens on loopback only.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import hmac
import logging
import os
import pwd
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from hebi_common.atomic import atomic_write
from hebi_common.config import HebiConfig
from hebi_common.nginx_conf import find_mime_types
from pod_launcher.nginx import find_nginx

log = logging.getLogger("hebi.gateway")

FRONT_HEADER = "X-Hebi-Front"
PEER_HEADER = "X-Hebi-Peer"
ROUTE_HEADER = "X-Hebi-Route"
#: The route check's answer: where the session is (as nginx names an upstream), and what to send it.
UPSTREAM_HEADER = "X-Hebi-Upstream"
ORIGINAL_METHOD = "X-Original-Method"
#: Headers of the front's own that neither a client may set for the gateway nor a session may see.
FRONT_HEADERS = (FRONT_HEADER.lower(), PEER_HEADER.lower(), ROUTE_HEADER.lower())
ROUTE_PATH = "/gateway/route"
PR_SET_PDEATHSIG = 1
_HEADER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: Addresses written into pools.conf as they are (anything else is reached without a pool).
_POOLABLE = re.compile(r"^[A-Za-z0-9._:/\[\]-]+$")
#: nginx's log of the requests it carried, read into the gateway's metrics.
PROXIED_LOG = "proxied.log"
#: The least time between two reloads of the front's pools.
RELOAD_INTERVAL = 1.0


class FrontError(Exception):
    """The nginx front could not start (no nginx, a port taken, a bad configuration): its log says why."""


def nginx_upstream(url: str) -> str:
    """A session's address as nginx's ``proxy_pass http://...`` takes it."""
    if url.startswith("unix:"):
        return f"unix:{url[len('unix:'):]}:"
    return url.removeprefix("http://").rstrip("/")


def pool_name(address: str) -> str:
    """The name of the keep-alive pool nginx keeps for one session's address."""
    return "hebi_session_" + hashlib.sha256(address.encode()).hexdigest()[:16]


def render_pools(addresses: set[str]) -> str:
    """pools.conf: a keep-alive upstream per running session, and the map from its address to it. Without
    a pool nginx opens a connection per request (a third of the throughput, bench/gateway); an address
    not (yet) in the map is reached directly, so a reload that has not happened costs only speed."""
    lines = ["map $hebi_upstream $hebi_pool {", "    default $hebi_upstream;"]
    blocks = []
    for address in sorted(a for a in addresses if _POOLABLE.match(a)):
        name = pool_name(address)
        lines.append(f'    "{address}" {name};')
        server = address[:-1] if address.startswith("unix:") else address  # upstream{} names a socket without the colon
        blocks.append(f"upstream {name} {{\n    server {server};\n    keepalive 16;\n}}")
    return "\n".join(lines + ["}", *blocks]) + "\n"


def header_variable(name: str) -> str:
    """nginx's variable for a request header: ``$http_x_remote_user``."""
    if not _HEADER_NAME.match(name):
        raise ValueError(f"{name!r} is not a header name nginx can read")
    return "$http_" + name.lower().replace("-", "_")


@dataclass(frozen=True)
class FrontSettings:
    """What the nginx configuration is made from (render() is a pure function of it)."""

    listen: str
    gateway: str
    prefix: str
    front_secret: str
    route_secret: str
    #: Request headers no session may see (the gateway's DROPPED_HEADERS and its login method's).
    dropped_headers: tuple[str, ...]
    #: Request headers a login method reads: part of the route check's cache key.
    login_headers: tuple[str, ...]
    security_headers: dict[str, str] = field(default_factory=dict)
    cookie: str = "hebi_session"
    cache_seconds: int = 1
    body_idle_timeout: float = 60.0
    workers: int = 0
    mime_types: str = "/etc/nginx/mime.types"
    user: str = ""


#: Security headers a session may send one of its own of, kept beside the gateway's (see render).
ADDED_TO = {"content-security-policy"}


def render(s: FrontSettings) -> str:
    """The front's nginx.conf."""
    key = "|".join(["$remote_addr", "$http_host", "$request_method", "$http_origin", "$http_sec_fetch_site",
                    "$http_cookie", *(header_variable(h) for h in s.login_headers)])
    cleared = sorted({h.lower() for h in s.dropped_headers} - {"cookie"} | set(FRONT_HEADERS))
    clear = "".join(f'            proxy_set_header {h} "";\n' for h in cleared)
    # A session's own Content-Security-Policy goes on beside the gateway's: two policies are both
    # enforced, so it can only narrow what the page may do (a notebook's HTML is sandboxed this way).
    security = "".join((f"            proxy_hide_header {name};\n" if name.lower() not in ADDED_TO else "")
                       + f'            add_header {name} "{value}" always;\n'
                       for name, value in s.security_headers.items())
    to_gateway = (f"            proxy_set_header Host $http_host;\n"
                  f"            proxy_set_header {FRONT_HEADER} {s.front_secret};\n"
                  f"            proxy_set_header {PEER_HEADER} $remote_addr;\n"
                  f'            proxy_set_header {ROUTE_HEADER} "";\n'
                  f'            proxy_set_header Connection "";\n'
                  f"            proxy_http_version 1.1;\n")
    cookie = re.escape(s.cookie)
    return f"""# hebi gateway's nginx front, written by hebi_gateway.front at each start: do not edit.
daemon off;
{f"user {s.user};" if s.user else ""}
worker_processes {s.workers or "auto"};
pid {s.prefix}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    include {s.mime_types};
    default_type application/octet-stream;
    access_log off;
    # What the front carried, for the gateway's metrics (Front.collect): method, status, seconds.
    log_format hebi_proxied '$request_method $status $request_time';
    server_tokens off;
    # As the gateway alone: a trusted proxy's headers may have underscores (mod_auth_openidc's do).
    underscores_in_headers on;
    proxy_headers_hash_max_size 1024;
    proxy_headers_hash_bucket_size 128;

    client_body_temp_path {s.prefix}/client_body;
    proxy_temp_path {s.prefix}/proxy;
    fastcgi_temp_path {s.prefix}/fastcgi;
    uwsgi_temp_path {s.prefix}/uwsgi;
    scgi_temp_path {s.prefix}/scgi;
    proxy_cache_path {s.prefix}/routes levels=1 keys_zone=hebi_routes:4m max_size=64m inactive=60s use_temp_path=off;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    # The session gets the client's cookies without the gateway's own.
    map $http_cookie $session_cookies {{
        "~^{cookie}=[^;]*(?:;\\s*)?(?<rest>.*)$" "$rest";
        "~^(?<before>.*?);\\s*{cookie}=[^;]*(?<after>.*)$" "$before$after";
        default $http_cookie;
    }}

    include {s.prefix}/pools.conf;

    upstream hebi_gateway {{
        server {s.gateway};
        keepalive 32;
    }}

    server {{
        listen {s.listen} backlog=4096;
        client_max_body_size 0;
        client_body_timeout {s.body_idle_timeout:g}s;

        # The gateway's own pages and APIs (login, health, metrics, admin, progress: some stream).
        location /gateway/ {{
            proxy_pass http://hebi_gateway;
{to_gateway}            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
        }}
        # Only the front's own check below may ask where a login goes.
        location = {ROUTE_PATH} {{
            return 404;
        }}

        location / {{
            access_log {s.prefix}/{PROXIED_LOG} hebi_proxied buffer=64k flush=1s;
            auth_request /.hebi-route;
            auth_request_set $hebi_upstream $upstream_http_{UPSTREAM_HEADER.lower().replace("-", "_")};
            auth_request_set $hebi_identity $upstream_http_x_hebi_identity;
            # Not a plain request of a running session's: the gateway answers it whole.
            error_page 401 = @gateway;
            # The session did not take the connection, or its router says a service of it stopped
            # answering (502), or it refused the identity (401: a restarted session has a new secret,
            # and this answer was cached for the old one). Neither did anything with the request: the
            # gateway takes it again, finds out why, and restarts a broken session. hebi's services
            # never answer 401 or 502 for anything else; any other answer passes through.
            proxy_intercept_errors on;
            error_page 502 = @gateway;

            proxy_pass http://$hebi_pool;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Hebi-Identity $hebi_identity;
            proxy_set_header Cookie $session_cookies;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
{clear}{security}            proxy_buffering off;
            # Unbuffered, this is the most nginx moves per read (8k by default: slow for big slices).
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 256k;
            # A request is read whole before it goes on, so the gateway can take it again (above);
            # bodies past client_body_buffer_size wait in the front's folder.
            client_body_buffer_size 1m;
            proxy_read_timeout 3600s;
            proxy_send_timeout {s.body_idle_timeout:g}s;
            send_timeout 3600s;
        }}

        location = /.hebi-route {{
            internal;
            proxy_pass http://hebi_gateway{ROUTE_PATH};
{to_gateway}            proxy_set_header {ROUTE_HEADER} {s.route_secret};
            proxy_set_header {ORIGINAL_METHOD} $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_cache hebi_routes;
            proxy_cache_key "{key}";
            proxy_cache_valid 200 {s.cache_seconds}s;
            proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;
        }}

        location @gateway {{
            proxy_pass http://hebi_gateway;
{to_gateway}            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


class Front:
    """The front's secrets (create_app) and its nginx process (serve_app)."""

    def __init__(self, config: HebiConfig, state_dir: Path, dropped_headers: tuple[str, ...],
                 login_headers: tuple[str, ...], security_headers: dict[str, str], cookie: str,
                 running_addresses: Callable[[], set[str]]):
        self.config = config
        #: The addresses of the sessions running now, as nginx names them.
        self.running_addresses = running_addresses
        self.prefix = state_dir / "front"
        self.front_secret = secrets.token_urlsafe(32)
        self.route_secret = secrets.token_urlsafe(32)
        self.dropped_headers, self.login_headers = dropped_headers, login_headers
        self.security_headers, self.cookie = security_headers, cookie
        self.process: subprocess.Popen | None = None
        #: The session addresses pools.conf holds, and when nginx was last told to reload it.
        self.pools: set[str] = set()
        self._reloaded = 0.0
        self._reload_pending = False

    def from_front(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.headers.get(FRONT_HEADER, "").encode(), self.front_secret.encode())

    def is_route_check(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.headers.get(ROUTE_HEADER, "").encode(), self.route_secret.encode())

    def refresh_pools(self) -> None:
        """Keep a pool for each running session's address and none other: rewrite pools.conf and
        reload nginx, at most once a second (a reload starts fresh workers)."""
        addresses = self.running_addresses()
        if addresses == self.pools or self.process is None or self._reload_pending:
            return
        wait = self._reloaded + RELOAD_INTERVAL - time.monotonic()
        if wait > 0:
            self._reload_pending = True

            def later() -> None:
                self._reload_pending = False
                self.refresh_pools()
            asyncio.get_running_loop().call_later(wait, later)
            return
        self._write_pools(addresses)
        self._reloaded = time.monotonic()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGHUP)

    def collect(self, proxied: Callable[..., None]) -> int:
        """Hand the requests the front carried to ``proxied(method, status, seconds, "front")`` (the gateway's
        metrics); how many. Each call renames nginx's log and has nginx reopen it (USR1), and reads the
        log renamed by the call before, which nginx has long stopped writing: nothing is lost, nothing
        counted twice, and the figures are at most two calls late."""
        log_path, taken = self.prefix / PROXIED_LOG, self.prefix / (PROXIED_LOG + ".1")
        count = 0
        if taken.exists():
            with open(taken, errors="replace") as lines:
                for line in lines:
                    method, _, rest = line.partition(" ")
                    status, _, seconds = rest.partition(" ")
                    with contextlib.suppress(ValueError):
                        proxied(method, int(status), float(seconds), "front")
                        count += 1
            taken.unlink()
        if self.process is not None and self.process.poll() is None and log_path.exists() and log_path.stat().st_size:
            os.replace(log_path, taken)
            os.kill(self.process.pid, signal.SIGUSR1)
        return count

    def _write_pools(self, addresses: set[str]) -> None:
        with atomic_write(self.prefix / "pools.conf", 0o600, text=True) as out:
            out.write(render_pools(addresses))
        self.pools = set(addresses)

    def settings(self, listen: str, gateway: str) -> FrontSettings:
        front = self.config.gateway.front
        return FrontSettings(
            listen=listen, gateway=gateway, prefix=str(self.prefix), front_secret=self.front_secret,
            route_secret=self.route_secret, dropped_headers=self.dropped_headers, login_headers=self.login_headers,
            security_headers=self.security_headers, cookie=self.cookie, cache_seconds=front.cache_seconds,
            body_idle_timeout=self.config.gateway.body_idle_timeout, workers=front.workers,
            mime_types=find_mime_types() or "/etc/nginx/mime.types",
            # As root nginx would run its workers as nobody, who may not reach the sessions' sockets.
            user=pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else "")

    def start(self, host: str, port: int, gateway: str, timeout: float = 20.0) -> int:
        """Start nginx on host:port (0: a free port) in front of the gateway at ``gateway``; the port."""
        nginx = find_nginx(self.config.gateway.front.nginx)
        if nginx is None:
            raise FrontError(f"gateway.front is on, but there is no {self.config.gateway.front.nginx!r} "
                               "(install nginx: scripts/install-system.sh nginx)")
        self.prefix.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write_pools(set())
        for _ in range(5):
            chosen = port or _free_port(host)
            listen = f"[{host}]:{chosen}" if ":" in host else f"{host}:{chosen}"
            conf = self.prefix / "nginx.conf"
            with atomic_write(conf, 0o600, text=True) as out:
                out.write(render(self.settings(listen, gateway)))
            errors = open(self.prefix / "error.log", "ab")
            self.process = subprocess.Popen([nginx, "-p", str(self.prefix), "-c", str(conf),
                                             "-e", "stderr"], stdout=errors, stderr=errors, start_new_session=True,
                                            preexec_fn=_end_with_parent)
            errors.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    socket.create_connection((host, chosen), 0.2).close()
                    log.info("nginx front listening on %s, in front of the gateway at %s", listen, gateway)
                    return chosen
                except OSError:
                    time.sleep(0.05)
            self.stop()
            tail = (self.prefix / "error.log").read_text(errors="replace")[-1500:]
            if port or "Address already in use" not in tail:
                raise FrontError(f"the nginx front did not start on {listen}: {tail}")
        raise FrontError("the nginx front found no free port")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: requests under way finish
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _end_with_parent() -> None:
    """In the child before nginx runs: a gateway killed outright takes its front along (an orphaned
    front would keep the port, with secrets no gateway knows)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
