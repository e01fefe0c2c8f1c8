"""Browser tests: Debian's Chromium driven by Playwright (never ``playwright install``).

Each test gets a fresh page; any console error or uncaught page error fails the test.
Screenshots go to ``$ARTIFACTS_DIR/screenshots`` (default ``./artifacts``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ADMIN_PASSWORD

CHROMIUM = os.environ.get("RELAY_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SCREENSHOTS = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser(db_url: str, emulator: Any) -> Iterator[Browser]:
    """Needs the database and the emulator first: Playwright's sync API keeps an event loop
    running in this thread, after which their asyncio.run() set-up could not run."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


class Console:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    console = Console()
    console.watch(opened)
    yield opened
    context.close()
    assert not console.errors, f"console errors: {console.errors}"


def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # caret="initial": Playwright otherwise hides the caret with a style attribute, which an htmx
    # swap may copy onto new inputs where the Content-Security-Policy then refuses it.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


def login(page: Page, admin: Any) -> None:
    page.goto(admin.url + "/")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(admin.url + "/")
