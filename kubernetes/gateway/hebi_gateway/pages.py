"""The gateway's own pages: login and "starting your session". Plain HTML, no scripts needed."""
from html import escape

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


def login_page(next_path: str = "/", error: str = "", user: str = "") -> str:
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>hebi: log in</title><style>{_STYLE}</style></head>
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
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="1">
<title>hebi: starting your session</title><style>{_STYLE}</style></head>
<body><main><h1>Starting your session…</h1>
<p class="sub">{escape(user)}, your workspace is being prepared. This page reloads by itself.</p>
<p>{escape(detail)}</p></main></body></html>"""


def failed_page(user: str, detail: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hebi: session failed</title><style>{_STYLE}</style></head>
<body><main><h1>Your session could not start</h1>
<p class="error">{escape(detail)}</p>
<p>Reload the page to try again; if it keeps failing, tell your facility's hebi admin.</p>
<form method="post" action="/gateway/logout"><button type="submit">Log out</button></form>
</main></body></html>"""


def refused_page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hebi: refused</title><style>{_STYLE}</style></head>
<body><main><h1>Refused</h1>
<p class="error">This form was sent from a page of another site, so hebi did not act on it.</p>
<p><a href="/gateway/login">Log in to hebi</a> on its own page.</p>
</main></body></html>"""
