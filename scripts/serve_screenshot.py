"""Regenerate docs/diagrams/serve.png: the `statechart serve` simulator on the order machine
after a few clicks (ADD {"price": 5}, CHECKOUT, AUTHORIZED, PACKED).

Run from anywhere: ``python scripts/serve_screenshot.py`` (needs Flask, selenium, Graphviz and
Debian's chromium + chromium-driver; tests/browser.py explains the browser set-up).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from browser import CHROMEDRIVER, CHROMIUM, live_server  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from statechart.web.app import create_app  # noqa: E402
from statechart.web.catalog import load_catalog  # noqa: E402

OUT = REPO / "docs" / "diagrams" / "serve.png"


def main() -> int:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,760", "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    wait = WebDriverWait(driver, 20)
    try:
        with live_server(create_app(load_catalog(REPO / "machines"))) as url:
            driver.get(url)
            wait.until(lambda d: d.find_elements("css selector", "#machine option"))
            Select(driver.find_element("id", "machine")).select_by_value("order")
            driver.find_element("id", "start").click()
            wait.until(lambda d: d.find_element("id", "session-controls").is_displayed())
            payload = driver.find_element("id", "payload")
            for event in ("ADD", "CHECKOUT", "AUTHORIZED", "PACKED"):
                payload.clear()
                if event == "ADD":
                    payload.send_keys('{"price": 5}')
                selector = f'#events button[data-event="{event}"]'
                wait.until(lambda d: d.find_elements("css selector", selector))
                depth = driver.find_element("id", "depth").text
                driver.find_element("css selector", selector).click()
                wait.until(lambda d: d.find_element("id", "depth").text != depth)
            payload.send_keys('{"note": "left at the door"}')
            ActionChains(driver).move_to_element(driver.find_element("id", "status-line")).perform()  # no hover
            OUT.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(OUT))
    finally:
        driver.quit()
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
