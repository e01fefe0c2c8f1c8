"""Log in with a real browser and open every page: no console errors, a screenshot of each,
labels and keyboard access, and a phone-sized screen."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from app.admin.render import NAV
from tests.browser.conftest import login, shot


def test_login_then_every_page(page: Page, make_admin) -> None:
    admin = make_admin()
    page.goto(admin.url + "/usage")
    expect(page).to_have_url(f"{admin.url}/login?next=%2Fusage")
    shot(page, "login")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    login(page, admin)
    for href, label in NAV:
        page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()
        page.wait_for_url(admin.url + href)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        shot(page, "page-" + (href.strip("/") or "dashboard"))


def test_keyboard_and_phone(page: Page, make_admin) -> None:
    admin = make_admin()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(admin.url + "/login")
    # The password field takes the focus (autofocus): Chromium moves it there at its next
    # rendering, which may come after the load event, so wait for it before typing.
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type("correct horse battery staple")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Log in")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(admin.url + "/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the dashboard is {width}px wide on a 390px screen"
    shot(page, "phone-dashboard")
