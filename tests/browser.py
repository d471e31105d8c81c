"""A headless Chromium for page tests, and a real server to point it at.

Debian's ``chromium`` and ``chromium-driver`` are driven through selenium with an explicit
``Service('/usr/bin/chromedriver')``, so selenium manager never downloads a browser or a driver.
Without them (or without selenium) the browser tests skip with the reason on a developer machine
and fail in CI (environment variable CI set), where they must run.

Use in a test module::

    from browser import chromium, live_server  # noqa: F401 - pytest fixtures
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


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'statechart[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.exists(path) or shutil.which(path)):
            return f"{path} is missing (apt-get install {package})"
    return None


def require_browser() -> None:
    problem = _missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem + "; CI must run the browser tests")
        pytest.skip(problem)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver (1400x1000), quit after the test."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


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
