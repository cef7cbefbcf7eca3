"""The token page at /tokens, driven in headless Chromium through Playwright.

The browser is Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it);
Playwright's own browser downloads are never used. A missing browser fails
these tests rather than skipping them.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chat2api.sim import SimServer, mint_access_token, mint_refresh_token
from chat2api.store import fingerprint
from servers import ServiceFactory, ServiceServer

ADMIN_KEY = "page-admin-key-5d1c0e"


@pytest.fixture
def admin(make_service: ServiceFactory, sim: SimServer) -> ServiceServer:
    """chat2api with ADMIN_KEY set, exchanging RefreshTokens at the simulator."""
    return make_service(ADMIN_KEY=ADMIN_KEY, OAUTH_BASE_URL=sim.base_url)


def _sign_in(page: Page, service: ServiceServer, key: str) -> None:
    page.goto(f"{service.base_url}/tokens")
    page.fill("#key", key)
    page.click("#use-key")


def test_add_list_and_remove(page: Page, admin: ServiceServer, page_errors: list[str]) -> None:
    """Enter the key, paste two tokens, see both by fingerprint with counts, remove one."""
    access = mint_access_token(plan="plus")
    refresh = mint_refresh_token()
    _sign_in(page, admin, ADMIN_KEY)
    expect(page.locator("#manage")).to_be_visible()
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#count-total")).to_have_text("0")

    page.fill("#tokens", f"# two accounts\n{access}\n{refresh},ws-9\n")
    page.click("#add")
    rows = page.locator("#accounts-body tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#message")).to_have_text("Added 2, skipped 0 already in the pool.")
    expect(page.locator("#accounts-body td.fp")).to_have_text(
        [fingerprint(access), fingerprint(refresh)]
    )
    expect(rows.nth(0)).to_contain_text("AccessToken")
    expect(rows.nth(0)).to_contain_text("plus")
    expect(rows.nth(1)).to_contain_text("RefreshToken")
    expect(rows.nth(1)).to_contain_text("ws-9")
    expect(page.locator("#count-total")).to_have_text("2")
    expect(page.locator("#count-active")).to_have_text("2")
    expect(page.locator("#count-dead")).to_have_text("0")
    expect(page.locator("#tokens")).to_have_value("")
    html = page.content()
    assert access not in html and refresh not in html

    rows.nth(0).locator("button.remove").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#accounts-body td.fp")).to_have_text([fingerprint(refresh)])
    expect(page.locator("#count-total")).to_have_text("1")
    expect(page.locator("#message")).to_have_text(f"Removed {fingerprint(access)}.")

    # The key lives in this tab's sessionStorage: a reload shows the table again.
    assert page.evaluate("sessionStorage.getItem('chat2api-admin-key')") == ADMIN_KEY
    page.reload()
    expect(page.locator("#accounts-body tr")).to_have_count(1)
    assert page_errors == []


def test_wrong_key_shows_an_error_and_no_table(page: Page, admin: ServiceServer) -> None:
    """With a wrong key the accounts do not load and the page says why."""
    _sign_in(page, admin, "not-the-key")
    message = page.locator("#message")
    expect(message).to_be_visible()
    expect(message).to_have_class("message error")
    expect(message).to_contain_text("Authorization: Bearer <ADMIN_KEY>")
    expect(page.locator("#manage")).to_be_hidden()
    expect(page.locator("#accounts-body tr")).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('chat2api-admin-key')") is None


def test_bad_line_refresh_revive_and_clear(
    page: Page, admin: ServiceServer, sim: SimServer
) -> None:
    """A bad pasted line shows its number; Refresh now, Retry dead and Clear all work."""
    good = mint_refresh_token()
    revoked = mint_refresh_token(state="revoked")
    _sign_in(page, admin, ADMIN_KEY)
    expect(page.locator("#manage")).to_be_visible()

    page.fill("#tokens", f"{good}\nnot a token\n")
    page.click("#add")
    expect(page.locator("#message")).to_contain_text("line 2 is not an AccessToken")
    expect(page.locator("#message")).to_have_class("message error")
    expect(page.locator("#accounts-body tr")).to_have_count(0)

    page.fill("#tokens", f"{good}\n{revoked}\n")
    page.click("#add")
    expect(page.locator("#accounts-body tr")).to_have_count(2)

    page.click("#refresh")
    expect(page.locator("#message")).to_contain_text("Refreshed 1 of 2 accounts.")
    expect(page.locator("#message")).to_contain_text("refused")
    expect(page.locator("#count-dead")).to_have_text("1")
    expect(page.locator("#accounts-body tr").nth(1)).to_contain_text("dead")
    assert sim.state.stats.refreshes == 2

    page.click("#revive")
    expect(page.locator("#message")).to_have_text("Revived 1 dead accounts; cleared 0 cooldowns.")
    expect(page.locator("#count-active")).to_have_text("2")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#clear")
    expect(page.locator("#accounts-body tr")).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#clear")
    expect(page.locator("#message")).to_have_text("Removed 2 accounts.")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#count-total")).to_have_text("0")


def test_disabled_page_explains_admin_key(page: Page, make_service: ServiceFactory) -> None:
    """Without ADMIN_KEY the page shows how to enable token management, and no key field."""
    service = make_service()
    page.goto(f"{service.base_url}/tokens")
    notice = page.locator("#disabled")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Set ADMIN_KEY in the environment")
    expect(notice).to_contain_text("restart chat2api")
    expect(page.locator("#key")).to_have_count(0)
