"""A chat front end on another origin calls the API from Chromium (preflight included)."""

from __future__ import annotations

from playwright.sync_api import Page

from chat2api.sim import SimServer
from servers import ServiceFactory

_CALL = """async ([url, token]) => {
  const answer = await fetch(url + "/chat/completions", {
    method: "POST",
    headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    body: JSON.stringify({
      model: "gpt-4o",
      messages: [{role: "user", content: "say exactly: from the page"}],
    }),
  });
  const body = await answer.json();
  return body.choices[0].message.content;
}"""

_BLOCKED = """async (url) => {
  try {
    await fetch(url + "/models", {headers: {"Authorization": "Bearer x"}});
    return "read";
  } catch (error) {
    return "blocked";
  }
}"""


def test_page_on_another_origin_gets_the_answer(
    page: Page, make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """The page (served by the simulator, another port) reads chat2api's completion."""
    service = make_service()
    page.goto(sim.base_url + "/")  # any page of another origin
    assert page.evaluate(_CALL, [service.openai_base_url, token]) == "from the page"


def test_switched_off_the_browser_blocks_the_call(
    page: Page, make_service: ServiceFactory, sim: SimServer, page_errors: list[str]
) -> None:
    """With CORS_ALLOW_ORIGINS=none, Chromium refuses the cross-origin answer."""
    service = make_service(CORS_ALLOW_ORIGINS="none")
    page.goto(sim.base_url + "/")
    assert page.evaluate(_BLOCKED, service.openai_base_url) == "blocked"
    assert any("CORS" in error for error in page_errors)
