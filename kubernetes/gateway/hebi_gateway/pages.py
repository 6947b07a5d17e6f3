"""The gateway's own pages: login and "starting your session". Plain HTML; their small scripts only add to
what works without them, and are served as files (the CSP allows no inline script)."""
from html import escape
from urllib.parse import quote

from aiohttp import web

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1d2733;display:flex;min-height:100vh;
margin:0;align-items:center;justify-content:center}
main{background:#fff;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 2px 12px #0002;min-width:20rem}
h1{margin:0 0 .25rem;font-size:1.6rem}p.sub{margin:0 0 1.5rem;color:#5a6877}
label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #b8c2cc;border-radius:6px;font-size:1rem}
button{margin-top:1.25rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#1f6feb;color:#fff;
font-size:1rem;cursor:pointer}.error{color:#b42318;background:#fee4e2;padding:.5rem .75rem;border-radius:6px}
"""


LOGIN_SCRIPT_PATH = "/gateway/static/login.js"
PROGRESS_SCRIPT_PATH = "/gateway/static/progress.js"
#: The app keeps its place in the URL's #fragment, which browsers never send: the login form carries it
#: in ``next``, so a deep link opened while logged out lands where it pointed.
LOGIN_SCRIPT = """// hebi: keep the #fragment of the page that asked for a login.
(function () {
  var next = document.querySelector("form input[name=next]");
  if (next && window.location.hash && next.value.indexOf("#") < 0) { next.value += window.location.hash; }
})();
"""


def login_page(next_path: str = "/", error: str = "", user: str = "") -> str:
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>hebi: log in</title><style>{_STYLE}</style>
<script src="{LOGIN_SCRIPT_PATH}" defer></script></head>
<body><main>
<h1>hebi</h1><p class="sub">Savu tomography workspace</p>
{error_html}
<form method="post" action="/gateway/login">
<input type="hidden" name="next" value="{escape(next_path)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" value="{escape(user)}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form></main></body></html>"""


def starting_page(user: str, detail: str = "") -> str:
    # With scripts, the steps of the start stream in (/gateway/progress) and the page reloads at the end;
    # without, it reloads every second.
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><noscript><meta http-equiv="refresh" content="1"></noscript>
<title>hebi: starting your session</title><style>{_STYLE}</style>
<script src="{PROGRESS_SCRIPT_PATH}" defer></script></head>
<body><main><h1>Starting your session…</h1>
<p class="sub">{escape(user)}, your workspace is being prepared. This page reloads by itself.</p>
<p>{escape(detail)}</p><ol id="hebi-progress" aria-live="polite"></ol></main></body></html>"""


def failed_page(user: str, detail: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hebi: session failed</title><style>{_STYLE}</style></head>
<body><main><h1>Your session could not start</h1>
<p class="error">{escape(detail)}</p>
<p>Reload the page to try again; if it keeps failing, tell your facility's hebi admin.</p>
<form method="post" action="/gateway/logout"><button type="submit">Log out</button></form>
</main></body></html>"""


def culled_page(notice: str, path: str) -> str:
    """Shown once, on the first page load after a cull, when the session has already started again."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hebi: your session was stopped</title><style>{_STYLE}</style></head>
<body><main><h1>Welcome back</h1>
<p class="sub">{escape(notice)}</p>
<p>A new session is running; your files and jobs are where you left them.</p>
<p><a href="{escape(path)}">Continue to hebi</a></p></main></body></html>"""


def busy_page(detail: str, retry_after: int) -> str:
    """A start a limit holds back: the page tries again by itself (a refresh, as the CSP allows no inline script)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{int(retry_after)}">
<title>hebi: busy</title><style>{_STYLE}</style></head>
<body><main><h1>hebi is busy</h1>
<p class="sub">{escape(detail)}</p>
<p>This page tries again by itself in {int(retry_after)} seconds.</p></main></body></html>"""


def refused_page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hebi: refused</title><style>{_STYLE}</style></head>
<body><main><h1>Refused</h1>
<p class="error">This form was sent from a page of another site, so hebi did not act on it.</p>
<p><a href="/gateway/login">Log in to hebi</a> on its own page.</p>
</main></body></html>"""


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>hebi: {escape(title)}</title><style>{_STYLE}</style></head>
<body><main><h1>{escape(title)}</h1>
{body}
</main></body></html>"""


def login_refused_page(reason: str) -> str:
    """The identity provider (or proxy) knows this person, but hebi may not let them in."""
    return _page("Access refused", f'<p class="error" role="alert">{escape(reason)}</p>'
                 "<p>You are signed in at your identity provider, but not to hebi.</p>")


def login_failed_page(reason: str, again: bool = False) -> str:
    link = '<p><a href="/gateway/login">Log in again</a></p>' if again else ""
    return _page("Login did not complete", f'<p class="error" role="alert">{escape(reason)}</p>{link}')


def logged_out_page(proxy: bool = False, next_path: str = "/") -> str:
    where = ("Close the browser to end your facility login too." if proxy else
             "You may still be signed in at your identity provider; log out there too on a shared computer.")
    again = "/gateway/login?again=1&next=" + quote(next_path, safe="")
    return _page("Logged out", f'<p class="sub">You are logged out of hebi. {escape(where)}</p>'
                 f'<p><a href="{escape(again)}">Log in again</a></p>')


def proxy_login_page() -> str:
    return _page("Log in through your facility", '<p class="sub">This hebi is reached through your facility\'s '
                 "login proxy, and this request did not come through it. Open hebi at its usual address.</p>")


def add_script(app: web.Application, path: str, text: str) -> None:
    """Serve one of the pages' scripts at ``path`` (a file, since the CSP allows no inline script)."""
    async def script(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/javascript", headers={"Cache-Control": "no-cache"})
    app.router.add_get(path, script)
