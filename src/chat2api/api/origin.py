"""Whether a page on another site made the browser send this request (CSRF).

Browsers say where a request comes from in ``Sec-Fetch-Site`` (every current
one); older ones send ``Origin`` on form posts. A request with neither is a
non-browser client (curl, an SDK), which no foreign page can drive. Only
``same-origin`` and ``none`` (typed, bookmarked, opened from another app)
count as our own: ``same-site`` is a sibling subdomain, which may be someone
else's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = ["from_foreign_site"]

_OWN = frozenset({"same-origin", "none"})


def from_foreign_site(request: Request) -> bool:
    """True when a browser sent this request on behalf of another site's page."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in _OWN
    origin = request.headers.get("origin")
    if origin is None:
        return False
    if origin == "null":  # sandboxed frames, data: URLs, some redirects
        return True
    host = urlsplit(origin).netloc.lower()
    # Behind a proxy the Host may be rewritten: the forwarded host counts too.
    ours = {
        request.headers.get("host", "").lower(),
        request.headers.get("x-forwarded-host", "").split(",")[0].strip().lower(),
    }
    return host not in ours
