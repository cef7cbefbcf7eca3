"""The headers a browser adds to a request on its own, for the user agent chat2api sends.

The transport impersonates a browser's TLS and HTTP/2 fingerprint but not
its default headers (``upstream/transport.py`` says why), so every caller
states the headers of the kind of request it stands for:

* :func:`fetch_headers`: a ``fetch()`` of the web app, to its own origin
  (sentinel, conversation) or to file storage: ``Sec-Fetch-Mode: cors``,
  ``Sec-Fetch-Dest: empty``;
* :func:`document_headers`: the top-level load of the home page
  (``Sec-Fetch-Mode: navigate``, ``Upgrade-Insecure-Requests``);

both led by the user-agent client hints (``Sec-CH-UA*``) that Chromium
sends on every request. The transport adds ``Accept-Encoding`` itself (and
decodes what it asked for).

The client hints follow from the user agent alone: Chromium lists its own
brand, "Chromium" and a GREASE brand whose punctuation, version and place
in the list are chosen by the major version (``GenerateBrandVersionList``
in Chromium's ``user_agent_utils.cc``). Browsers without client hints
(Firefox, Safari, anything on iOS) get none.
"""

from __future__ import annotations

import functools
import re
from types import MappingProxyType
from typing import Final

__all__ = ["client_hints", "document_headers", "fetch_headers"]

_CHROMIUM = re.compile(r"Chrome/(\d+)\.")  # not CriOS: Chrome on iOS is WebKit, no hints
_EDGE = re.compile(r"EdgA?/(\d+)\.")
# Chromium's GREASE: characters for "Not?A_Brand", versions, and the place of
# (GREASE, "Chromium", the browser's own brand) in the list, by major version.
_GREASE_CHARACTERS: Final = " (:-./);=?_"
_GREASE_VERSIONS: Final = ("8", "99", "24")
_ORDERS: Final = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
_PLATFORMS: Final = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("CrOS", "Chrome OS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)

Headers = MappingProxyType[str, str]


def _brand_list(brand: str, major: int) -> str:
    grease = (
        f"Not{_GREASE_CHARACTERS[major % 11]}A{_GREASE_CHARACTERS[(major + 1) % 11]}Brand",
        _GREASE_VERSIONS[major % 3],
    )
    entries: list[tuple[str, str]] = [("", "")] * 3
    order = _ORDERS[major % 6]
    entries[order[0]] = grease
    entries[order[1]] = ("Chromium", str(major))
    entries[order[2]] = (brand, str(major))
    return ", ".join(f'"{name}";v="{version}"' for name, version in entries)


@functools.lru_cache(maxsize=16)
def client_hints(user_agent: str) -> Headers:
    """``Sec-CH-UA``, ``-Mobile`` and ``-Platform`` as Chromium sends them; empty otherwise."""
    edge = _EDGE.search(user_agent)
    chromium = _CHROMIUM.search(user_agent)
    if chromium is None or "Firefox/" in user_agent:
        return MappingProxyType({})
    brand, major = ("Microsoft Edge", int(edge[1])) if edge else ("Google Chrome", int(chromium[1]))
    platform = next((name for key, name in _PLATFORMS if key in user_agent), "Unknown")
    return MappingProxyType(
        {
            "Sec-CH-UA": _brand_list(brand, major),
            "Sec-CH-UA-Mobile": "?1" if "Mobile" in user_agent else "?0",
            "Sec-CH-UA-Platform": f'"{platform}"',
        }
    )


@functools.lru_cache(maxsize=16)
def fetch_headers(user_agent: str, site: str = "same-origin") -> Headers:
    """What a ``fetch()`` of the web app carries besides its own headers.

    ``site`` is ``Sec-Fetch-Site``: ``same-origin`` for the backend,
    ``cross-site`` for file storage on other hosts.
    """
    return MappingProxyType(
        {
            **client_hints(user_agent),
            "User-Agent": user_agent,
            "Sec-Fetch-Dest": "empty",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Site": site,
        }
    )


@functools.lru_cache(maxsize=16)
def document_headers(user_agent: str) -> Headers:
    """What a top-level navigation typed into the address bar carries."""
    return MappingProxyType(
        {
            **client_hints(user_agent),
            "Upgrade-Insecure-Requests": "1",
            "User-Agent": user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
            "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
            "Sec-Fetch-Site": "none",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-User": "?1",
            "Sec-Fetch-Dest": "document",
            "Accept-Language": "en-US,en;q=0.9",
            "Priority": "u=0, i",
        }
    )
