"""Operations: Prometheus metrics at /gateway/metrics, and /gateway/health with the launcher's own state.

The metrics use the official client (prometheus-client), each app with its own registry, so two gateways
in one process (the tests) count apart:

- ``hebi_sessions{state}``: sessions the launcher runs, by state (read at scrape time);
- ``hebi_session_starts_total{outcome}`` and ``hebi_session_start_duration_seconds``: every start the
  launcher made, measured around ``Launcher.start``;
- ``hebi_proxy_request_duration_seconds{method,status}``: every request the proxy answered (not the
  gateway's own pages), until its answer was sent whole, by method and status class (``2xx`` ...);
- ``hebi_login_failures_total{reason}``: refused logins (``refused``: wrong password, a provider's or the
  group rule's no) and throttled ones;
- ``hebi_launcher_healthy``: 1 while the launcher says it works (Launcher.health);
- ``hebi_session_culls_total{reason}``: sessions the culler stopped (``idle``, ``max_age``);
- ``hebi_session_starts_refused_total{limit}``: starts the limits refused (``concurrent_starts``, ``max_sessions``).

Only a scraper with the token of ``gateway.metrics_token_file``, one whose own address is in
``gateway.metrics_addresses``, or a logged-in admin may read them (docs/security.md).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hebi_common.config import ConfigError, GatewayConfig
from hebi_common.errors import UserError
from hebi_common.identity import Identity
from pod_launcher import Launcher, SessionInfo

from .sessions import SessionTable

log = logging.getLogger("hebi.gateway")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The login methods' own routes: an answer of 4xx there is a refused login (auth.local, auth.oidc).
LOGIN_PATHS = ("/gateway/login", "/gateway/oidc/")
#: Seconds, from a cached session's answer (milliseconds) to a long download or an event stream.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: Seconds a start takes: a local session in about one, a pod whose images must be pulled in minutes.
START_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 180, 300)


class GatewayMetrics:
    def __init__(self, sessions: SessionTable):
        self.registry = CollectorRegistry()
        self.starts = Counter("hebi_session_starts", "Session starts by the launcher, by outcome",
                              ["outcome"], registry=self.registry)
        self.start_seconds = Histogram("hebi_session_start_duration_seconds",
                                       "Seconds from asking the launcher for a session to its answering",
                                       buckets=START_BUCKETS, registry=self.registry)
        self.requests = Histogram("hebi_proxy_request_duration_seconds",
                                  "Requests the proxy answered, seconds until the whole answer was sent",
                                  ["method", "status", "proxy"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.login_failures = Counter("hebi_login_failures", "Logins refused or throttled", ["reason"],
                                      registry=self.registry)
        self.culls = Counter("hebi_session_culls", "Sessions the culler stopped, by reason", ["reason"],
                             registry=self.registry)
        self.refused_starts = Counter("hebi_session_starts_refused", "Session starts refused by a limit",
                                      ["limit"], registry=self.registry)
        for reason in ("idle", "max_age"):
            self.culls.labels(reason)
        for limit in ("concurrent_starts", "max_sessions"):
            self.refused_starts.labels(limit)
        for outcome in ("started", "failed"):
            self.starts.labels(outcome)
        for reason in ("refused", "throttled"):
            self.login_failures.labels(reason)
        self.registry.register(_SessionsCollector(sessions))

    def proxied(self, method: str, status: int, seconds: float, proxy: str = "gateway") -> None:
        """One proxied request, carried by this process (``gateway``) or by the nginx front (``front``,
        Front.collect)."""
        self.requests.labels(method if method in METHODS else "other", f"{status // 100}xx", proxy).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _SessionsCollector(Collector):
    """Read at each scrape from the gateway's session table and the launcher, so they are never stale."""

    def __init__(self, sessions: SessionTable):
        self.sessions = sessions

    def collect(self) -> Iterable[GaugeMetricFamily]:
        launcher = self.sessions.launcher
        # The launcher's own list, not the gateway's table: after a gateway restart the table knows only
        # the sessions used since, the launcher every one (the kubernetes launcher from its watch's cache).
        counts = dict.fromkeys(("running", "starting", "failed"), 0)
        try:
            for info in launcher.list():
                if info.state in counts:
                    counts[info.state] += 1
        except Exception:  # noqa: BLE001 - a scrape must not fail; missing numbers say it
            log.exception("the launcher could not list the sessions for the metrics")
        else:
            by_state = GaugeMetricFamily("hebi_sessions", "Sessions the launcher runs, by state", labels=["state"])
            for state, count in counts.items():
                by_state.add_metric([state], count)
            yield by_state
        healthy = GaugeMetricFamily("hebi_launcher_healthy", "1 while the launcher says it works, else 0",
                                    labels=["backend"])
        healthy.add_metric([launcher.name], 1 if launcher_health(launcher).get("ok") else 0)
        yield healthy


def launcher_health(launcher: Launcher) -> dict:
    """The launcher's own report (Launcher.health), never an exception: a launcher whose report fails is
    not healthy, and says why."""
    try:
        report = dict(launcher.health())
    except Exception as err:  # noqa: BLE001 - health must answer even when the launcher is broken
        log.exception("the launcher's health report failed")
        return {"ok": False, "detail": f"its health report failed: {err.__class__.__name__}"}
    report["ok"] = bool(report.get("ok"))
    return report


class MeasuredLauncher:
    """The gateway's launcher with each start counted and timed. Everything else is the launcher's own:
    not a Launcher subclass, whose defaults (progress, profiles, health) would hide the backend's."""

    def __init__(self, launcher: Launcher, metrics: GatewayMetrics):
        self.inner = launcher
        self.metrics = metrics

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def start(self, identity: Identity, *args, **kwargs) -> SessionInfo:
        began = time.monotonic()
        try:
            info = self.inner.start(identity, *args, **kwargs)
        except Exception:
            self.metrics.starts.labels("failed").inc()
            raise
        self.metrics.starts.labels("started").inc()
        self.metrics.start_seconds.observe(time.monotonic() - began)
        return info


class MetricsAccess:
    """Who may read /gateway/metrics: the scrape token's bearer, the configured addresses, an admin."""

    def __init__(self, settings: GatewayConfig, is_admin: Callable[[web.Request], bool] | None = None):
        self.token = ""
        if settings.metrics_token_file:
            try:
                self.token = Path(settings.metrics_token_file).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ConfigError(f"gateway.metrics_token_file: cannot read {settings.metrics_token_file}: "
                                  f"{err.strerror}") from None
            if not self.token:
                raise ConfigError(f"gateway.metrics_token_file: {settings.metrics_token_file} is empty")
        self.networks = [ipaddress.ip_network(a, strict=False) for a in settings.metrics_addresses]
        self.is_admin = is_admin

    def allows(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if self.token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return True
        # The connection's own peer, never X-Forwarded-For: through the Ingress every client would look
        # like the proxy, and a client can write that header itself.
        try:
            peer = ipaddress.ip_address(request.remote or "")
        except ValueError:
            peer = None
        if peer is not None and any(peer in network for network in self.networks):
            return True
        return bool(self.is_admin and self.is_admin(request))


METRICS = web.AppKey("metrics", GatewayMetrics)
ACCESS = web.AppKey("metrics_access", MetricsAccess)
OPERATIONS_SESSIONS = web.AppKey("operations_sessions", SessionTable)


def install(app: web.Application, settings: GatewayConfig, sessions: SessionTable,
            is_admin: Callable[[web.Request], bool] | None = None) -> None:
    """Add /gateway/health and /gateway/metrics (before the proxy's catch-all route) and the measuring
    middleware, and count the starts of ``sessions``' launcher."""
    metrics = GatewayMetrics(sessions)
    sessions.launcher = cast(Launcher, MeasuredLauncher(sessions.launcher, metrics))
    app[METRICS] = metrics
    app[ACCESS] = MetricsAccess(settings, is_admin)
    app[OPERATIONS_SESSIONS] = sessions
    # Outermost, so it sees the status the client got (after the error middlewares made one).
    app.middlewares.insert(0, measure)
    app.router.add_get("/gateway/health", health)
    app.router.add_get("/gateway/metrics", metrics_page)


def admin_check(auth) -> Callable[[web.Request], bool]:
    """Whether a request comes from a logged-in admin, per the login method ``auth`` (auth.Authenticator)."""
    def is_admin(request: web.Request) -> bool:
        try:
            login = auth.current(request)
        except web.HTTPException:  # a request the method refuses outright (a forged trusted header)
            return False
        return bool(login is not None and login.admin)
    return is_admin


def count_login_failure(app: web.Application, reason: str = "refused") -> None:
    """For a login method whose refusals are not answers on its own routes (LOGIN_PATHS)."""
    app[METRICS].login_failures.labels(reason).inc()


@web.middleware
async def measure(request: web.Request, handler) -> web.StreamResponse:
    began = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as err:
        status = err.status
        raise
    except UserError as err:
        status = err.status
        raise
    finally:
        path = request.path
        metrics: GatewayMetrics = request.app[METRICS]
        if not path.startswith("/gateway/"):
            metrics.proxied(request.method, status, time.monotonic() - began)
        elif path.startswith(LOGIN_PATHS) and status == 429:
            metrics.login_failures.labels("throttled").inc()
        elif path.startswith(LOGIN_PATHS) and status in (400, 401, 403):
            metrics.login_failures.labels("refused").inc()


async def health(request: web.Request) -> web.Response:
    """200 while the gateway and its launcher work; 503 (the kubelet's liveness probe restarts the
    gateway) when the launcher says it cannot, e.g. the kubernetes launcher's watch stalled."""
    sessions: SessionTable = request.app[OPERATIONS_SESSIONS]
    report = await asyncio.to_thread(launcher_health, sessions.launcher)
    ok = report["ok"]
    return web.json_response({"status": "ok" if ok else "failing",
                              "launcher": {"backend": sessions.launcher.name, **report}},
                             status=200 if ok else 503, headers={"Cache-Control": "no-store"})


async def metrics_page(request: web.Request) -> web.Response:
    if not request.app[ACCESS].allows(request):
        log.warning("metrics refused to %s", request.remote)
        raise UserError("the metrics are for the facility's monitoring and hebi's admins", 403)
    body = await asyncio.to_thread(request.app[METRICS].exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
