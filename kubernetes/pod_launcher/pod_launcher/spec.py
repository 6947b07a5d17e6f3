"""The session contract, declared once: which parts a user's session has, how each is started and probed,
the environment every part reads, and where the roots, the state folder and the secret reach it.

Every launcher builds from this: ``local`` as processes with Unix sockets, ``podman`` (and, next,
``kubernetes``) as a Pod of one container per part from objects.make_pod. The images carry the programs;
this module says how they are called, so images and launchers cannot drift apart.
"""
from __future__ import annotations

import http.client
from dataclasses import dataclass

from hebi_common.identity import HEADER, Identity

#: How the Python services run: gunicorn's threaded worker as the service's only process, through
#: hebi_common.serve (a session serves one user; supervising is the launcher's or the runtime's). These
#: are gunicorn's options. Kept here alone so every launcher runs the services the same way.
GUNICORN_ARGS = ("--threads", "8", "--graceful-timeout", "5", "--timeout", "120", "--log-level", "warning")

#: Where things are inside a part's container (the images provide the programs: python3 with hebi's
#: packages on PATH, and hebi-web's entrypoint; the launcher mounts the rest). Roots and the state folder
#: are mounted at their configured paths, so the configuration means the same inside and out.
CONFIG_PATH = "/etc/hebi/hebi.yaml"
SECRET_PATH = "/etc/hebi/secret"
#: The one writable folder of a container (an emptyDir): temporary files, nginx's pid and buffers.
TMP = "/tmp"


@dataclass(frozen=True)
class Part:
    """One process of a session (one container in a pod)."""

    name: str
    #: Which of ``launcher.podman.images`` runs it.
    image: str
    #: Port on the session's own address in a pod (the local launcher uses Unix sockets instead).
    port: int
    #: Answers 200 to a request with the gateway's signed identity once the part serves.
    health: str
    #: The WSGI app of a Python service; empty for nginx (the hebi-web image's own entrypoint).
    app: str = ""
    #: Whether the part reads the user's roots, the state folder, the configuration and the secret.
    session_files: bool = True
    #: Environment of this part alone, on top of the session's.
    env: tuple[tuple[str, str], ...] = ()

    def command(self, bind: str, python: str = "python3") -> list[str]:
        """The argv of a Python service listening on ``bind`` (``unix:/path`` or ``host:port``)."""
        if not self.app:
            raise ValueError(f"{self.name} is not a Python service")
        return [python, "-m", "hebi_common.serve", "--bind", bind, *GUNICORN_ARGS, self.app]


@dataclass(frozen=True)
class SessionSpec:
    parts: tuple[Part, ...]

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    @property
    def services(self) -> tuple[Part, ...]:
        """The Python services behind the router."""
        return tuple(p for p in self.parts if p.app)

    @property
    def readiness_paths(self) -> tuple[str, ...]:
        """What must answer 200 through the router before the session is ready: every part's health
        path, so the first /data/ request of a fresh session never waits for a dataserver still starting."""
        return tuple(dict.fromkeys(part.health for part in self.parts))

    @property
    def router(self) -> Part:
        """The part the gateway talks to: nginx serving the web app and routing /api/ and /data/."""
        return self.part("web")

    def web_environment(self, address: str, body_timeout: float) -> dict[str, str]:
        """What the hebi-web image's entrypoint renders its nginx config from (images/web/entrypoint.sh,
        with hebi_common.nginx_conf): nginx on the pod's address, routing to the services there."""
        return {"HEBI_NGINX_LISTEN": f"{address}:{self.router.port}",
                "HEBI_NGINX_API": f"{address}:{self.part('api').port}",
                "HEBI_NGINX_DATA": f"{address}:{self.part('dataserver').port}",
                "HEBI_NGINX_PREFIX": f"{TMP}/nginx", "HEBI_NGINX_BODY_TIMEOUT": str(round(body_timeout))}


SESSION = SessionSpec(parts=(
    Part("web", image="web", port=8080, health="/api/health", session_files=False),
    # GridEngine's libdrmaa (jobs backend drmaa) needs more static TLS than glibc keeps spare, and only
    # from the start of the process: without it, loading the library fails inside a running API.
    Part("api", image="api", port=8081, health="/api/health", app="hebi_api.app:create_app()",
         env=(("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384"),)),
    Part("dataserver", image="dataserver", port=8082, health="/data/",
         app="hebi_dataserver.app:create_app()"),
))


def session_environment(identity: Identity, state_dir: str, config_path: str, *, secret: str = "",
                        secret_file: str = "", isolated: bool = False) -> dict[str, str]:
    """The environment contract of a session's services (read by hebi_common.session): who the session
    is for, its state folder, the configuration file, and the secret, inline (local processes) or as a
    file (containers, so that ``podman inspect`` does not show it)."""
    if bool(secret) == bool(secret_file):
        raise ValueError("give the secret or the file that holds it")
    env = {"HEBI_SESSION_USER": identity.user, "HEBI_SESSION_HOME": identity.home or "",
           "HEBI_SESSION_STATE_DIR": state_dir, "PYTHONUNBUFFERED": "1",
           # glibc gives each busy thread its own malloc arena and keeps what it freed: after a burst of
           # parallel reads an idle dataserver held ~20 MB more; two arenas keep it near 5 (bench/session).
           "MALLOC_ARENA_MAX": "2"}
    env.update({"HEBI_SESSION_SECRET": secret} if secret else {"HEBI_SESSION_SECRET_FILE": secret_file})
    if isolated:  # the user's own code may run (jobs of kind "code"): it can reach only what the user can
        env["HEBI_SESSION_ISOLATED"] = "1"
    if config_path:
        env["HEBI_CONFIG"] = config_path
    return env


def probe(address: str, port: int, path: str, identity_header: str) -> str:
    """One readiness probe of a session as the gateway will reach it (through its router, with the
    signed identity), for the launchers that find their sessions at an address: its answer, "HTTP 200"."""
    connection = http.client.HTTPConnection(address, port, timeout=2)
    try:
        connection.request("GET", path, headers={HEADER: identity_header})
        answer = connection.getresponse()
        answer.read()
        return f"HTTP {answer.status}"
    finally:
        connection.close()
