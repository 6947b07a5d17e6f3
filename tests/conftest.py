"""Fixtures every test may use: a session's config and signed Flask clients for unit-level tests, and
the whole system (gateway + local launcher + nginx) started once per test run for end-to-end tests.

Real components: where one is missing, tests that need it are skipped with the reason, except under
HEBI_REQUIRE_REAL=1 (CI), where a missing real component fails the run.
"""
from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))  # test-only packages: `from fakekube import FakeCluster`

import local_system  # noqa: E402

from hebi_common.config import HebiConfig, require_real  # noqa: E402
from hebi_common.identity import HEADER, Identity, sign_identity  # noqa: E402
from hebi_common.sandbox import Roots  # noqa: E402
from hebi_common.session import SessionContext  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "savu"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22"}
# The fake Kubernetes cluster's `fake_cluster` fixture (tests/fakekube).
pytest_plugins = ["fakekube.fixtures"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that ran a whole system shows the end of its gateway's log: the gateway writes it into
    the system's temporary folder, which its fixture removes, so a CI run's failure would keep no trace."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        gateway = getattr(value, "gateway", None)
        if isinstance(gateway, local_system.Gateway):
            log = gateway.config_path.parent / "gateway.log"
            with contextlib.suppress(OSError):
                report.sections.append(("gateway log (last 40 lines)",
                                        "\n".join(log.read_text(errors="replace").splitlines()[-40:])))


def until(condition, what: str, seconds: float = 30.0) -> None:
    """Waits for a state the system reaches by itself; the bound is only there so a broken build ends."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"never: {what}")


def run_async(main) -> None:
    """Run coroutine function ``main`` to completion on a fresh event loop in its own thread: the
    browser fixture's playwright keeps an event loop running in the main thread for the whole run."""
    import asyncio
    import threading
    failure: list[BaseException] = []

    def target():
        try:
            asyncio.run(main())
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def real_component(name: str, available: bool, how: str) -> None:
    """Skip (or, under HEBI_REQUIRE_REAL=1, fail) when a real component is not available."""
    if available:
        return
    message = f"{name} is not available: {how}"
    if require_real():
        pytest.fail(f"HEBI_REQUIRE_REAL=1: {message}", pytrace=False)
    pytest.skip(message)


# -- unit level: one session's Flask apps, called in-process with a signed identity -----------------

@pytest.fixture
def roots_dir(tmp_path: Path) -> Path:
    for name in ("data", "processing", "output"):
        (tmp_path / "roots" / name).mkdir(parents=True)
    return tmp_path / "roots"


@pytest.fixture
def session_config(roots_dir: Path) -> HebiConfig:
    return HebiConfig.model_validate({"session": {
        "roots": {"data": {"path": str(roots_dir / "data"), "writable": False},
                  "processing": {"path": str(roots_dir / "processing"), "writable": True},
                  "output": {"path": str(roots_dir / "output"), "writable": True}},
        "max_upload_bytes": 1024 * 1024,
        "state_dir": str(roots_dir.parent / "state")}})


@pytest.fixture
def session_context(session_config: HebiConfig) -> SessionContext:
    return SessionContext(user="alice", home="", secret="test-secret",
                          roots=Roots.from_config(session_config.session.roots, "alice"),
                          state_dir=Path(session_config.session.state_dir))


def signed_client(app, context: SessionContext, user: str | None = None):
    """A Flask test client whose requests carry the gateway's signed identity header."""
    client = app.test_client()
    identity = Identity(user=user or context.user)
    client.environ_base["HTTP_" + HEADER.upper().replace("-", "_")] = sign_identity(identity, context.secret)
    return client


@pytest.fixture
def api_app(session_config, session_context):
    from hebi_api.app import create_app
    return create_app(session_config, session_context)


@pytest.fixture
def api(api_app, session_context):
    return signed_client(api_app, session_context)


@pytest.fixture
def dataserver_app(session_config, session_context):
    from hebi_dataserver.app import create_app
    return create_app(session_config, session_context)


@pytest.fixture
def dataserver(dataserver_app, session_context):
    return signed_client(dataserver_app, session_context)


# -- end to end: the whole system on loopback ---------------------------------------------------------

def browser_like_session() -> requests.Session:
    """An HTTP client that, like a browser, sends an idempotent request again when the server closed the
    kept-alive connection under it: the gateway's nginx front reloads (gracefully) when the set of
    sessions changes, which closes idle client connections (docs/admin.md, "Keep-alive pools"), and a
    request already on its way on one meets a closed socket. HTTP asks clients to retry those
    (RFC 9112 9.3.1); requests does not by itself. Only connections closed before any answer: an
    answer, whatever its status, is never asked for twice."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry
    http = requests.Session()
    retry = Retry(total=2, connect=2, read=2, status=0, other=0, redirect=False, raise_on_status=False,
                  allowed_methods=Retry.DEFAULT_ALLOWED_METHODS)
    for scheme in ("http://", "https://"):
        http.mount(scheme, HTTPAdapter(max_retries=retry))
    return http


def gateway_login(url: str, user: str, password: str) -> requests.Session:
    """A client logged in through the gateway's login form, as a browser would be."""
    http = browser_like_session()
    answer = http.post(f"{url}/gateway/login", allow_redirects=False,
                       data={"username": user, "password": password, "next": "/"})
    assert answer.status_code == 303, answer.text
    return http


class System:
    def __init__(self, base: Path, config_path: Path, gateway: local_system.Gateway):
        self.base = base
        self.config_path = config_path
        self.gateway = gateway
        self.url = gateway.url.rstrip("/")

    def login(self, user: str, password: str | None = None) -> requests.Session:
        return gateway_login(self.url, user, password or PASSWORDS[user])

    def folders(self, user: str) -> dict[str, Path]:
        return local_system.user_folders(self.config_path, user)


@pytest.fixture(scope="session")
def nginx_mode() -> str:
    from pod_launcher.nginx import find_nginx
    real_component("nginx", find_nginx() is not None, "install it with scripts/install-system.sh nginx")
    return "required"


@pytest.fixture(scope="session")
def system(nginx_mode) -> System:
    # Short base path: the sessions' Unix sockets live under it.
    base = Path(tempfile.mkdtemp(prefix="hebi-e2e-", dir="/tmp"))
    config_path = local_system.write_config(base, nginx=nginx_mode)
    for user, password in PASSWORDS.items():
        local_system.add_user(config_path, user, password)
    gateway = local_system.Gateway(config_path)
    try:
        yield System(base, config_path, gateway)
    finally:
        gateway.stop()
        local_system.stop_all_sessions(config_path)
        shutil.rmtree(base, ignore_errors=True)


# -- the browser: Debian's chromium driven by Python playwright --------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--no-default-browser-check"]
# The Viewer (h5web) draws with WebGL: headless Chromium needs its software renderer for that.
CHROMIUM_FLAGS += ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium for the whole run (never a browser downloaded by playwright)."""
    real_component("chromium", Path(CHROMIUM).exists(), "install it with scripts/install-system.sh chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


def browser_login(page, system: System, user: str) -> None:
    """Log in through the real login page, as a person would."""
    page.goto(f"{system.url}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=user-name]:has-text('%s')" % user)
