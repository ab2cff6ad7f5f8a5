"""A real browser: Debian's headless chromium driven by selenium through /usr/bin/chromedriver,
against the real web server (the Procfile's gunicorn) over a home with a grown history."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app.lifecycle.home import Home
from app.runner import web_server
from tests.support import grow_history

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _find(names) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


@pytest.fixture(scope="session")
def browser():
    """Headless chromium that keeps the page's console messages for the test to read."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _find(CHROMIUM), _find(["chromedriver"])
    if binary is None or driver is None:
        pytest.skip("chromium and chromedriver are not installed (Debian packages chromium, "
                    "chromium-driver; `make system`)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--hide-scrollbars",
                     "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_page_load_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def history_home(tmp_path_factory) -> Home:
    """A home with a history to show: a change of the data (drift), a refused promotion, quarantined rows."""
    home = Home(str(tmp_path_factory.mktemp("browser") / "home"))
    grow_history(home)
    return home


@pytest.fixture(scope="module")
def site(history_home, tmp_path_factory):
    with web_server(history_home.url, tmp_path_factory.mktemp("logs") / "web.log") as url:
        yield url


@pytest.fixture
def screenshot(browser, tmp_path):
    """``screenshot(name)``: the whole page as PNG, in the test's folder, and in docs/ when
    UPDATE_SCREENSHOTS=1 (how the README's pictures are made)."""

    def take(name: str) -> Path:
        height = min(browser.execute_script("return document.documentElement.scrollHeight"),
                     8000)
        browser.set_window_size(1280, height)
        # The window's size includes what is not page (headless chromium keeps a frame).
        frame = height - browser.execute_script("return window.innerHeight")
        browser.set_window_size(1280, height + frame)
        target = tmp_path / name
        browser.save_screenshot(str(target))
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            shutil.copy(target, DOCS / name)
        browser.set_window_size(1280, 900)
        return target

    return take
