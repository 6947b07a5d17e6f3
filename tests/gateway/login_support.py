"""The real components of the login tests, started by the project's own scripts on loopback: the npm
``oidc-provider`` (tests/oidc/server.mjs), Apache with mod_auth_openidc in front of the gateway, and a
whole hebi (gateway + local launcher + nginx) whose gateway uses a given login method."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import local_system
import yaml
from conftest import REPO, real_component

OIDC_DIR = REPO / "tests" / "oidc"
CLIENT_ID, CLIENT_SECRET = "hebi-web", "hebi-web-test-secret"
#: A client whose tokens last SHORT_TTL seconds: a login through it must end when they do.
SHORT_CLIENT_ID, SHORT_TTL = "hebi-short", 15
APACHE_CLIENT_ID = "hebi-apache"
#: A client whose id_tokens the provider edits after signing them.
TAMPERED_CLIENT_ID = "hebi-tampered"
#: A public client: no secret, PKCE alone proves the code's redeemer.
PUBLIC_CLIENT_ID = "hebi-public"
#: The provider's people: their groups and the Unix ids it gives (Diamond's posix-uid scope).
ACCOUNTS = {
    "alice": {"groups": ["savu-users"], "posix_uid": 23001, "posix_gid": 23101},
    "dora": {"groups": ["savu-users", "hebi-admins"], "posix_uid": 23002, "posix_gid": 23102},
    "mallory": {"groups": ["visitors"], "posix_uid": 23003, "posix_gid": 23103},
    "nouid": {"groups": ["savu-users"]},
    "Bad.Name": {"groups": ["savu-users"], "posix_uid": 23004},
    "rooty": {"groups": ["savu-users"], "posix_uid": 0, "posix_gid": 0},
}
APACHE_MODULES = Path("/usr/lib/apache2/modules")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_provider() -> None:
    real_component("oidc-provider (npm)", shutil.which("node") is not None
                   and (OIDC_DIR / "node_modules" / "oidc-provider").is_dir(),
                   "scripts/bootstrap.sh test installs it (npm ci in tests/oidc)")


def require_apache() -> None:
    real_component("apache2 with mod_auth_openidc",
                   (shutil.which("apache2") is not None or Path("/usr/sbin/apache2").exists())
                   and (APACHE_MODULES / "mod_auth_openidc.so").exists(),
                   "install it with scripts/install-system.sh apache")


def _wait_port(port: int, process: subprocess.Popen | None, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:] if log.exists() else ''}")


@contextmanager
def oidc_provider(base: Path, redirect_uris: dict[str, list[str]]) -> Iterator[str]:
    """The npm oidc-provider on a free loopback port; yields its issuer URL. ``redirect_uris``: per client."""
    require_provider()
    port = free_port()
    clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris[CLIENT_ID]}]
    if SHORT_CLIENT_ID in redirect_uris:
        clients.append({"client_id": SHORT_CLIENT_ID, "client_secret": CLIENT_SECRET,
                        "redirect_uris": redirect_uris[SHORT_CLIENT_ID], "id_token_ttl": SHORT_TTL})
    if TAMPERED_CLIENT_ID in redirect_uris:
        clients.append({"client_id": TAMPERED_CLIENT_ID, "client_secret": CLIENT_SECRET,
                        "redirect_uris": redirect_uris[TAMPERED_CLIENT_ID], "tamper": True})
    if PUBLIC_CLIENT_ID in redirect_uris:
        clients.append({"client_id": PUBLIC_CLIENT_ID, "redirect_uris": redirect_uris[PUBLIC_CLIENT_ID]})
    if APACHE_CLIENT_ID in redirect_uris:
        clients.append({"client_id": APACHE_CLIENT_ID, "client_secret": CLIENT_SECRET,
                        "redirect_uris": redirect_uris[APACHE_CLIENT_ID]})
    config = base / "oidc.json"
    config.write_text(json.dumps({"port": port, "clients": clients, "accounts": ACCOUNTS}))
    log = base / "oidc.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["node", str(OIDC_DIR / "server.mjs"), str(config)], cwd=OIDC_DIR,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, process, "oidc-provider", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


class Hebi:
    """A whole hebi on loopback whose gateway logs users in by ``auth`` (gateway.auth)."""

    def __init__(self, base: Path, port: int, auth: dict, gateway: dict | None = None, launcher: dict | None = None):
        self.base, self.port = base, port
        self.config_path = local_system.write_config(base, port=port, nginx="required")
        config = yaml.safe_load(self.config_path.read_text())
        config["gateway"].update(gateway or {})
        config["gateway"]["auth"] = auth
        config["launcher"].update(launcher or {})
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.gateway: local_system.Gateway | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.gateway = local_system.Gateway(self.config_path)

    def stop_gateway(self) -> None:
        if self.gateway:
            self.gateway.stop()
            self.gateway = None

    def close(self) -> None:
        self.stop_gateway()
        local_system.stop_all_sessions(self.config_path)

    def log(self) -> str:
        return (self.base / "gateway.log").read_text(errors="replace")


def oidc_auth(issuer: str, secret_file: Path | None, client_id: str = CLIENT_ID, **extra) -> dict:
    secret = {"client_secret_file": str(secret_file)} if secret_file else {}
    return {"method": "oidc", "allowed_groups": ["savu-users"], "admin_groups": ["hebi-admins"],
            "unix_ids": "claims", "uid_claim": "posix_uid", "gid_claim": "posix_gid",
            "oidc": {"issuer": issuer, "client_id": client_id, **secret,
                     "scopes": ["openid", "profile", "email", "groups", "posix-uid"], **extra}}


def new_base(prefix: str) -> Path:
    # Short: the sessions' Unix sockets live under it.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def provider_login(page, user: str) -> None:
    """Sign in on the provider's own login form (its development form takes any password)."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "any-password")
    page.click("button[type=submit]")


def whoami(page, url: str) -> dict:
    answer = page.context.request.get(f"{url}/api/whoami", timeout=150_000)
    assert answer.status == 200, answer.text()
    return answer.json()


# -- Apache + mod_auth_openidc in front of the gateway --------------------------------------------------

APACHE_CONF = """ServerRoot {root}
PidFile {root}/httpd.pid
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
ErrorLog {root}/error.log
LogLevel warn
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule headers_module {modules}/mod_headers.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so
LoadModule proxy_wstunnel_module {modules}/mod_proxy_wstunnel.so
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so
User www-data
Group www-data
OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI http://127.0.0.1:{port}/oauth2/callback
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid email profile groups posix-uid"
OIDCPKCEMethod S256
OIDCRemoteUserClaim preferred_username
OIDCClaimPrefix "Oidc-Claim-"
OIDCPassIDTokenAs claims
OIDCPassUserInfoAs claims
ProxyPreserveHost On
<Location />
  AuthType openid-connect
  Require valid-user
  RequestHeader set X-Remote-User expr=%{{REMOTE_USER}}
  RequestHeader set X-Hebi-Proxy-Secret "{proxy_secret}"
</Location>
ProxyPass /oauth2/callback !
ProxyPass / http://127.0.0.1:{upstream}/ upgrade=websocket
ProxyPassReverse / http://127.0.0.1:{upstream}/
"""


@contextmanager
def apache(base: Path, port: int, issuer: str, upstream: int, proxy_secret: str) -> Iterator[str]:
    """Apache with mod_auth_openidc on loopback ``port``, in front of the gateway at ``upstream``."""
    require_apache()
    root = base / "apache"
    root.mkdir()
    shutil.chown(root, "www-data", "www-data")  # mod_auth_openidc's cache files are written by the workers
    conf = root / "httpd.conf"
    conf.write_text(APACHE_CONF.format(root=root, port=port, modules=APACHE_MODULES, issuer=issuer,
                                       client_id=APACHE_CLIENT_ID, client_secret=CLIENT_SECRET,
                                       passphrase="hebi-test-only-passphrase", upstream=upstream,
                                       proxy_secret=proxy_secret))
    binary = shutil.which("apache2") or "/usr/sbin/apache2"
    started = subprocess.run([binary, "-f", str(conf), "-k", "start"], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        _wait_port(port, None, "apache2", root / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([binary, "-f", str(conf), "-k", "stop"], capture_output=True)
        pid = root / "httpd.pid"
        deadline = time.monotonic() + 15
        while pid.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
