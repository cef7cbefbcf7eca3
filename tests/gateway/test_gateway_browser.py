"""The gateway in headless Chromium: the simulator's web app used through chat2api.

The browser is Debian's ``/usr/bin/chromium``, as in ``tests/browser``; a
missing browser fails these tests rather than skipping them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, Page, expect

from chat2api.sim import SimServer, mint_access_token
from servers import ServiceFactory, ServiceServer, add_tokens, bearers


@pytest.fixture
def mirror(make_service: ServiceFactory, sim: SimServer) -> tuple[ServiceServer, str]:
    """The gateway with one pool account, over a simulator asking for FNV proofs."""
    sim.state.config = sim.state.config.patched({"pow_hash": "fnv"})
    service = make_service(ENABLE_GATEWAY="true", AUTO_SEED="true")
    token = mint_access_token(account_id="gw-browser-acct")
    # Playwright's sync API keeps an event loop running in this thread: add from another.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(add_tokens, service.settings, token).result()
    return service, token


def test_chat_through_the_mirror(
    page: Page, mirror: tuple[ServiceServer, str], sim: SimServer, page_errors: list[str]
) -> None:
    """Log in with a seed, send a prompt, read the streamed answer; the sim saw the pool token."""
    service, token = mirror
    page.goto(f"{service.base_url}/?token=seed-one")
    assert page.url == f"{service.base_url}/"  # the seed left the address bar
    expect(page.locator("#user-name")).to_have_text("seed-one")
    expect(page.locator("#send")).to_be_enabled()
    page.fill("#prompt", "say exactly: hello from the mirror")
    page.click("#send")
    expect(page.locator("#status")).to_have_text("done")
    expect(page.locator("#answer")).to_have_text("hello from the mirror")
    assert bearers(sim, "/conversation") == [token]
    assert bearers(sim, "/chat-requirements") == [token]
    assert all("cookie" not in r["headers"] for r in sim.state.requests)
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == ["chat2api_gateway"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Lax"
    assert token not in page.content()
    assert page_errors == []

    page.click("#logout")
    expect(page).to_have_url(f"{service.base_url}/login")
    expect(page.locator("#token")).to_be_visible()


def test_stranger_lands_on_login(page: Page, mirror: tuple[ServiceServer, str]) -> None:
    """An anonymous browser opening / is sent to the login page; a bad seed is explained."""
    service, _ = mirror
    page.goto(f"{service.base_url}/")
    expect(page).to_have_url(f"{service.base_url}/login")
    expect(page.locator("#token")).to_be_visible()
    page.fill("#token", "seed-two")
    page.click("#login")
    expect(page).to_have_url(f"{service.base_url}/")
    expect(page.locator("#user-name")).to_have_text("seed-two")


def _chat(page: Page, base_url: str, seed: str, text: str) -> str:
    """Log ``page`` in as ``seed``, send ``text`` in the web app; the conversation id."""
    page.goto(f"{base_url}/?token={seed}")
    expect(page.locator("#user-name")).to_have_text(seed)
    page.fill("#prompt", f"say exactly: {text}")
    page.click("#send")
    expect(page.locator("#status")).to_have_text("done")
    conversation_id = page.locator("#answer").get_attribute("data-conversation-id")
    assert conversation_id
    return conversation_id


def _listed(page: Page) -> list[str]:
    """The sidebar list as the browser's own fetch gets it."""
    ids: list[str] = page.evaluate(
        """async () => {
            const r = await fetch('/backend-api/conversations?offset=0&limit=28',
                                  {credentials: 'include'});
            return (await r.json()).items.map(i => i.id);
        }"""
    )
    return ids


def _opened(page: Page, conversation_id: str) -> int:
    status: int = page.evaluate(
        "async (id) => (await fetch('/backend-api/conversation/' + id)).status", conversation_id
    )
    return status


def test_two_seeds_see_only_their_own_conversations(
    browser: Browser, mirror: tuple[ServiceServer, str]
) -> None:
    """Two seeds on one account in two Chromium contexts: each lists and opens only its own."""
    service, _ = mirror
    alice_context, bob_context = browser.new_context(), browser.new_context()
    try:
        alice, bob = alice_context.new_page(), bob_context.new_page()
        for tab in (alice, bob):
            tab.set_default_timeout(20_000)
        a1 = _chat(alice, service.base_url, "seed-alice", "from alice")
        b1 = _chat(bob, service.base_url, "seed-bob", "from bob")
        assert a1 != b1
        assert _listed(alice) == [a1]
        assert _listed(bob) == [b1]
        assert _opened(alice, a1) == 200
        assert _opened(alice, b1) == 404
        assert _opened(bob, a1) == 404
    finally:
        alice_context.close()
        bob_context.close()


def test_another_site_cannot_log_the_browser_in(
    page: Page, mirror: tuple[ServiceServer, str], sim: SimServer
) -> None:
    """A page of another origin auto-submitting the login form gets 403; the session stays."""
    service, _ = mirror
    page.goto(f"{service.base_url}/?token=victim")
    expect(page.locator("#user-name")).to_have_text("victim")
    page.goto(f"{sim.base_url}/")  # the attacker's page: another origin
    with page.expect_navigation():
        page.evaluate(
            """url => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = url;
                const field = document.createElement("input");
                field.name = "token";
                field.value = "attacker";
                form.appendChild(field);
                document.body.appendChild(form);
                form.submit();
            }""",
            f"{service.base_url}/login",
        )
    expect(page.locator("#error")).to_contain_text("another site")
    page.goto(f"{service.base_url}/")
    expect(page.locator("#user-name")).to_have_text("victim")
