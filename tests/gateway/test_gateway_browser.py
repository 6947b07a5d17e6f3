"""The gateway's web safety as Chromium meets it, through the real system: a hostile `next` leaves the
browser on the gateway, a form on another origin of the same host (same site: the login cookie is sent)
changes nothing and logs nobody in, and no page of hebi shows inside another site's frame."""
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from conftest import PASSWORDS, browser_login

pytestmark = pytest.mark.browser


@contextmanager
def attacker(html: str):
    """The hostile page, served on another port of the gateway's host: the same site, another origin."""
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/attack"
    finally:
        server.shutdown()
        server.server_close()


def _guard(page, *allowed: str) -> list[str]:
    """Let requests to the gateway and the attacker through; refuse (and record) any other."""
    hosts = {urlsplit(url).netloc for url in allowed}
    elsewhere: list[str] = []

    def route(route):
        if urlsplit(route.request.url).netloc in hosts:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()
    page.context.route("**/*", route)
    return elsewhere


def test_open_redirect_the_browser_stays_on_the_gateway_after_a_hostile_next(system, page):
    elsewhere = _guard(page, system.url)
    # A tab after the first '/': browsers drop it, and '//127.0.0.2:9/' is another host.
    page.goto(f"{system.url}/gateway/login?next=/%09/127.0.0.2:9/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_load_state("load")
    assert elsewhere == [], "the login sent the browser to another host"
    assert urlsplit(page.url).netloc == urlsplit(system.url).netloc
    page.wait_for_selector("[data-testid=user-name]:has-text('alice')")


def test_csrf_a_form_on_another_origin_of_the_same_host_changes_nothing(system, page):
    target = system.folders("alice")["processing"] / "csrf.nxs"
    # A text/plain form whose body reads as JSON: what made a process list before.
    browser_login(page, system, "alice")
    with attacker(f"""<form method="post" enctype="text/plain"
        action="{system.url}/api/process-lists/csrf.nxs"><input name='{{"plugins": [], "x": "' value='"}}'></form>
        <script>document.forms[0].submit()</script>""") as url:
        _guard(page, system.url, url)
        with page.expect_response(lambda r: "/api/process-lists/csrf.nxs" in r.url) as answer:
            page.goto(url)
        assert answer.value.status == 403
    assert not target.exists(), "a form on another site created a process list"


def test_csrf_login_from_another_origin_logs_nobody_in(system, page):
    with attacker(f"""<form method="post" action="{system.url}/gateway/login">
        <input name="username" value="bob"><input name="password" value="{PASSWORDS['bob']}"></form>
        <script>document.forms[0].submit()</script>""") as url:
        _guard(page, system.url, url)
        with page.expect_response(lambda r: r.url.endswith("/gateway/login")) as answer:
            page.goto(url)
        assert answer.value.status == 403
    assert not [c for c in page.context.cookies(system.url) if c["name"] == "hebi_session"]


def test_a_framed_hebi_page_is_refused_by_chromium(system, page):
    browser_login(page, system, "alice")
    with attacker(f'<iframe id="hebi" src="{system.url}/" width="800" height="600"></iframe>') as url:
        _guard(page, system.url, url)
        with page.expect_response(lambda r: r.url == f"{system.url}/") as answer:
            page.goto(url)
        assert answer.value.status == 200  # the app was answered, and Chromium would not show it framed
        page.wait_for_load_state("load")
    framed = page.frames[1]
    assert framed.query_selector("#root, form") is None, "a page of hebi showed inside another site's frame"


SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin"}


def test_security_headers_on_the_app_its_assets_the_api_and_the_dataserver(system):
    http = system.login("alice")
    shell = http.get(f"{system.url}/")
    asset = next(part.split('"')[0] for part in shell.text.split('src="')[1:])
    for answer in (shell, http.get(system.url + asset), http.get(f"{system.url}/api/whoami"),
                   http.get(f"{system.url}/data/meta", params={"file": "data/none.nxs"}),
                   requests.get(f"{system.url}/gateway/login")):
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.url, name)
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], answer.url
