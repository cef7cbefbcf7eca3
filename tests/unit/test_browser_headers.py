"""The browser's own headers for a user agent: client hints, fetch and navigation metadata."""

from __future__ import annotations

import pytest

from chat2api.sentinel import DEFAULT_USER_AGENT
from chat2api.upstream.browser import client_hints, document_headers, fetch_headers

WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"

# Sec-CH-UA as those Chrome releases send it (the same strings curl-impersonate
# carries for its chrome targets): GREASE brand, version and order change.
CHROME_BRANDS = {
    107: '"Google Chrome";v="107", "Chromium";v="107", "Not=A?Brand";v="24"',
    110: '"Chromium";v="110", "Not A(Brand";v="24", "Google Chrome";v="110"',
    116: '"Chromium";v="116", "Not)A;Brand";v="24", "Google Chrome";v="116"',
    119: '"Google Chrome";v="119", "Chromium";v="119", "Not?A_Brand";v="24"',
    120: '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"',
    131: '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
    142: '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"',
    152: '"Chromium";v="152", "Not?A_Brand";v="24", "Google Chrome";v="152"',
}


@pytest.mark.parametrize("major", sorted(CHROME_BRANDS))
def test_chrome_brand_list_follows_the_major_version(major: int) -> None:
    hints = client_hints(f"{WINDOWS} Chrome/{major}.0.0.0 Safari/537.36")
    assert dict(hints) == {
        "Sec-CH-UA": CHROME_BRANDS[major],
        "Sec-CH-UA-Mobile": "?0",
        "Sec-CH-UA-Platform": '"Windows"',
    }


def test_edge_mobile_and_platforms() -> None:
    edge = client_hints(f"{WINDOWS} Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0")
    assert edge["Sec-CH-UA"] == (
        '"Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
    )
    android = client_hints(
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/152.0.0.0 Mobile Safari/537.36"
    )
    assert android["Sec-CH-UA-Mobile"] == "?1"
    assert android["Sec-CH-UA-Platform"] == '"Android"'
    mac = client_hints(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/152.0.0.0 Safari/537.36"
    )
    assert mac["Sec-CH-UA-Platform"] == '"macOS"'


def test_browsers_without_client_hints_get_none() -> None:
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:147.0) Gecko/20100101 Firefox/147.0"
    safari = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.4 Safari/605.1.15"
    )
    chrome_ios = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/152.0.0.0 Mobile/15E148 Safari/604.1"
    )
    assert dict(client_hints(firefox)) == {}
    assert dict(client_hints(safari)) == {}
    assert dict(client_hints(chrome_ios)) == {}
    assert "Sec-CH-UA" not in fetch_headers(firefox)


def test_fetch_and_navigation_metadata() -> None:
    fetch = fetch_headers(DEFAULT_USER_AGENT)
    assert fetch["User-Agent"] == DEFAULT_USER_AGENT
    assert fetch["Sec-CH-UA"] == CHROME_BRANDS[152]
    assert (fetch["Sec-Fetch-Site"], fetch["Sec-Fetch-Mode"], fetch["Sec-Fetch-Dest"]) == (
        "same-origin",
        "cors",
        "empty",
    )
    assert "Upgrade-Insecure-Requests" not in fetch
    assert fetch_headers(DEFAULT_USER_AGENT, site="cross-site")["Sec-Fetch-Site"] == "cross-site"
    page = document_headers(DEFAULT_USER_AGENT)
    assert (page["Sec-Fetch-Site"], page["Sec-Fetch-Mode"], page["Sec-Fetch-Dest"]) == (
        "none",
        "navigate",
        "document",
    )
    assert page["Sec-Fetch-User"] == "?1"
    assert page["Upgrade-Insecure-Requests"] == "1"
    assert page["Accept"].startswith("text/html,")
    with pytest.raises(TypeError):
        fetch["User-Agent"] = "changed"  # type: ignore[index]  # shared: read-only
