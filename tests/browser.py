"""A real headless Chromium for tests of pages (the review page, the simulator), and a real
server to point it at.

Selenium drives Debian's ``chromium`` through ``chromedriver``, both named explicitly so that
Selenium Manager never tries to download a browser or a driver (there is no network in CI).

    from browser import chromium  # tests/ is on sys.path under pytest

    def test_page(tmp_path):
        with chromium() as browser:
            browser.get(page.as_uri())
            ...

or with the pytest fixture ``browser`` (import it into a test module or conftest.py). Where
Chromium or its driver is missing, a test fails in CI (CI=true) and skips elsewhere, saying why.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

CHROMIUM = os.environ.get("STATECHART_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STATECHART_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
#: Headless, as root in a container, and quiet: without the background-networking flags Chromium
#: keeps trying to reach Google's hosts, which this machine's closed network refuses.
ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US")

__all__ = ["chromium", "browser", "live_server", "missing", "CHROMIUM", "CHROMEDRIVER", "ARGUMENTS"]


def missing() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(path)):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must run the browser tests")
    pytest.skip(reason)


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium WebDriver, quit afterwards (its processes with it)."""
    reason = missing()
    if reason:
        _unavailable(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser() -> Iterator[Any]:
    """The ``chromium()`` driver as a fixture."""
    with chromium() as driver:
        yield driver


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields its base URL and stops it after."""
    from statechart.web.app import threaded_server

    server = threaded_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="statechart-serve-test", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
