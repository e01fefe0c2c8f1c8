"""The pages at a phone's width (390 x 844): nothing is cut off. The usage figures fit the screen
(their tables have few columns); the providers table, too wide for any phone, scrolls inside its
own box; a URL wraps only after its slashes, never inside ``host:port``; form fields stay on the
screen."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import Page

from tests.browser.conftest import login, shot

WIDTH = 390
# Every table cell and form field whose right edge is off the screen, unless ``mayScroll`` and a
# box between it and the page scrolls sideways to reach it.
CUT_OFF = """([width, mayScroll]) => {
  const scrolls = (el) => {
    for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box);
      const rect = box.getBoundingClientRect();
      if (["auto", "scroll"].includes(style.overflowX) && box.scrollWidth > box.clientWidth
          && rect.left >= 0 && rect.right <= width + 0.5) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll("th, td, input, select, textarea, button")) {
    const rect = el.getBoundingClientRect();
    if (rect.width && rect.right > width + 0.5 && !(mayScroll && scrolls(el))) {
      const name = (el.id || el.textContent || "").trim().slice(0, 40);
      out.push(`${el.tagName.toLowerCase()} ${name} ends at ${Math.round(rect.right)}`);
    }
  }
  return out;
}"""
# The lines each base URL cell is drawn on: a line break inside host:port shows as a line
# that starts or ends within it.
URL_LINES = """() => [...document.querySelectorAll("td.url")].map((cell) => {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  const lines = [];
  let top = null;
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    for (let i = 0; i < text.length; i++) {
      range.setStart(text, i); range.setEnd(text, i + 1);
      const y = Math.round(range.getBoundingClientRect().top);
      if (y !== top) { lines.push(""); top = y; }
      lines[lines.length - 1] += text.data[i];
    }
  }
  return lines;
})"""


def cut_off(page: Page, *, may_scroll: bool) -> list[str]:
    found: list[str] = page.evaluate(CUT_OFF, [WIDTH, may_scroll])
    return found


def test_usage_and_providers_fit_a_phone(page: Page, make_admin) -> None:
    admin = make_admin()
    tag = f"phone-{uuid.uuid4().hex[:6]}"
    for model in ("openai/gpt-4o", "openai/chat_nonstream_basic", "mystery-model"):
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        httpx.post(admin.relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": tag})
    admin.relay.rows(tag=tag)  # written
    custom = {"name": "phone", "api": "openai", "base_url": "http://127.0.0.1:1234/v1", "models": ["m"]}
    assert admin.client.post("/api/custom-providers", json=custom).status_code == 201
    page.set_viewport_size({"width": WIDTH, "height": 844})
    login(page, admin)
    fit = ("/", f"/usage?tag={tag}", "/providers/custom/phone", "/providers/models/openai/gpt-4o")
    wide = ("/providers/catalog", "/providers")  # tables of eight columns: they scroll in their box
    for path in (*fit, *wide):
        page.goto(admin.url + path)
        shot(page, "phone-" + (path.strip("/").split("?")[0].replace("/", "-") or "dashboard"))
        hidden = cut_off(page, may_scroll=path in wide)
        assert not hidden, f"cut off at {WIDTH}px on {path}: {hidden}"
    for lines in page.evaluate(URL_LINES):
        url = "".join(lines)
        host_port = url.split("//", 1)[-1].split("/", 1)[0]
        start = url.index(host_port)
        breaks = [sum(len(line) for line in lines[:i]) for i in range(1, len(lines))]
        assert not [b for b in breaks if start < b < start + len(host_port)], (
            f"{url} breaks inside {host_port}: {lines}"
        )


def test_a_long_url_wraps_instead_of_widening_the_page(page: Page, make_admin) -> None:
    """An Ollama instance's URL of 490 characters made the page 4,500 px wide."""
    admin = make_admin()
    url = "http://127.0.0.1:1/" + "x" * 470
    added = admin.client.post("/api/ollama/instances", json={"name": f"long-{uuid.uuid4().hex[:6]}", "base_url": url})
    assert added.status_code == 201, added.text
    page.set_viewport_size({"width": WIDTH, "height": 844})
    login(page, admin)
    page.goto(admin.url + "/ollama")
    widest = page.evaluate(  # what is too wide, should the test fail
        "() => [...document.querySelectorAll('body *')].filter(e => e.scrollWidth > innerWidth)"
        ".map(e => `${e.tagName}.${e.className} ${e.scrollWidth}`)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, widest
