"""The gateway's login page: one self-contained HTML form, no script."""

from __future__ import annotations

import html

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chat2api gateway: log in</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f4f4f5;margin:0;display:flex;
min-height:100vh;align-items:center;justify-content:center}}
main{{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;
width:min(28rem,90vw)}}
h1{{font-size:1.3rem;margin:0 0 1rem}}
label{{display:block;margin-bottom:.4rem;color:#333}}
input{{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #bbb;border-radius:6px;
font-family:monospace}}
button{{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#111;
color:#fff;font-size:1rem;cursor:pointer}}
.error{{background:#fde8e8;color:#9b1c1c;padding:.6rem;border-radius:6px;margin-bottom:1rem}}
p.hint{{color:#666;font-size:.85rem}}
</style></head>
<body><main>
<h1>chat2api gateway</h1>
{error}
<form method="post" action="/login" autocomplete="off">
<label for="token">RefreshToken, AccessToken or seed</label>
<input id="token" name="token" type="password" required autofocus{value}>
<button id="login" type="submit">Log in</button>
</form>
<p class="hint">A seed is the name your administrator gave you. Tokens stay on the server:
the browser only keeps a session cookie.</p>
</main></body></html>
"""


def render_login(error: str | None = None, value: str | None = None) -> str:
    """The login page, with ``error`` shown above the form and ``value`` filled in, if given."""
    shown = f'<p id="error" class="error" role="alert">{html.escape(error)}</p>' if error else ""
    filled = f' value="{html.escape(value, quote=True)}"' if value else ""
    return _PAGE.format(error=shown, value=filled)


def page_headers() -> dict[str, str]:
    """No caching, framing, referrers or foreign loads for the login page."""
    return {
        "Content-Security-Policy": _CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
