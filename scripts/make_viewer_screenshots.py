"""Screenshots of ``imagezarr view`` on the demo data, for the README.

Run: ``.venv/bin/python scripts/make_viewer_screenshots.py`` (needs ``selenium`` and
Debian's ``chromium`` + ``chromium-driver``). Generates the README's PSII experiment (seeded,
as ``scripts/make_readme_images.py`` does), scans it with the demo's pattern, serves it on
127.0.0.1 and, in a headless Chromium, writes ``docs/images/viewer-grid.png`` (nights by
plant, one protocol step and frame) and ``docs/images/viewer-image.png`` (one image, zoomed).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from imagezarr import scan
from imagezarr.cli._view import viewer_url
from imagezarr.serve import start
from imagezarr.testing import PSII_PATTERN, PSII_TYPES, make_psii_experiment

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images"


def driver():
    from selenium import webdriver

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if binary is None or chromedriver is None:
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,520")
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(chromedriver))


def wait(d, condition, timeout: float = 60.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(d, timeout).until(condition)


def main() -> int:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        make_psii_experiment(images, plants=12, nights=3, steps=4, frames=3)
        m = scan(images, pattern=PSII_PATTERN, types=PSII_TYPES)
        with start(m, port=0) as server:
            d = driver()
            try:
                d.get(viewer_url(server.url))
                wait(d, lambda d: d.find_element(By.ID, "grid").get_attribute("data-ready"))
                # the defaults: rows night, columns barcode (the first two dims)
                assert Select(d.find_element(By.ID, "coldim")).first_selected_option.text == (
                    "barcode"
                )
                d.execute_script("const s = $('size'); s.value = 80; s.oninput();")
                loaded = (
                    "return [...document.querySelectorAll('.cell img')]"
                    ".every((i) => i.complete && i.naturalWidth > 0)"
                )
                wait(d, lambda d: d.execute_script(loaded))
                time.sleep(0.5)
                OUT.mkdir(parents=True, exist_ok=True)
                d.save_screenshot(str(OUT / "viewer-grid.png"))
                d.find_element(By.CSS_SELECTOR, ".cell img").click()
                wait(d, lambda d: d.execute_script("return view.bitmap !== null"))
                d.execute_script(
                    "const st = $('stage'); const r = st.getBoundingClientRect();"
                    "st.dispatchEvent(new WheelEvent('wheel', {deltaY: -250, bubbles: true,"
                    " cancelable: true, clientX: r.left + r.width / 2,"
                    " clientY: r.top + r.height / 2}));"
                )
                time.sleep(0.3)
                d.save_screenshot(str(OUT / "viewer-image.png"))
            finally:
                d.quit()
    for name in ("viewer-grid.png", "viewer-image.png"):
        print(f"wrote {(OUT / name).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
