"""Stage 10, view: the viewer page and its endpoints under ``/_view/``.

The endpoints are tested over HTTP without a browser (pixels, labels, refusals, the token);
the page itself in a real headless Chromium driven by Selenium (Debian's ``chromium`` and
``chromium-driver``), which is skipped with the reason when either is missing.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.cli import main
from imagezarr.cli._view import viewer_url
from imagezarr.preview._select import format_label
from imagezarr.serve import start
from imagezarr.testing import (
    PSII_SCAN,
    loopback_s3,
    make_psii_experiment,
    random_image,
    write_image,
)

# -- data ---------------------------------------------------------------------------------------


def psii(tmp: Path) -> imagezarr.Manifest:
    """uint8 PNGs in one array (barcode, night, param, frame, y, x) with two holes."""
    images = tmp / "psii"
    make_psii_experiment(images, plants=4, nights=2, steps=2, frames=2, shape=(30, 40), holes=2)
    return imagezarr.scan(images, **PSII_SCAN)


def u16(tmp: Path) -> imagezarr.Manifest:
    """16-bit PNGs along one dim, ``sample``."""
    images = tmp / "u16"
    for s in range(3):
        write_image(images / f"s{s}.png", random_image((9, 11), "uint16", seed=s))
    return imagezarr.scan(images, pattern=r"(?P<sample>s\d+)\.png")


def rgb(tmp: Path) -> imagezarr.Manifest:
    images = tmp / "rgb"
    for s in range(2):
        write_image(images / f"s{s}.tif", random_image((6, 8, 3), seed=s))
    return imagezarr.scan(images, pattern=r"(?P<sample>s\d+)\.tif")


def request(url: str, path: str, headers: dict | None = None):
    """One raw GET (the path sent exactly as given): (status, response, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp, resp.read()
    finally:
        conn.close()


def block_means(a: np.ndarray, step: int) -> np.ndarray:
    """The expected thumbnail: means of step x step blocks, a partial edge block over the
    pixels it holds (the display rule of the contact sheet too)."""
    h, w = a.shape[:2]
    out = np.empty((math.ceil(h / step), math.ceil(w / step), *a.shape[2:]))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = a[i * step : (i + 1) * step, j * step : (j + 1) * step]
            out[i, j] = block.mean(axis=(0, 1))
    return out


def half_up(values: np.ndarray) -> np.ndarray:
    """uint8 means rounded as Pillow's box reduction rounds them (half up)."""
    return np.floor(values + 0.5).astype(np.uint8)


@pytest.fixture
def server():
    running = []

    def run(manifest, **options):
        s = start(manifest, port=0, timeout=30, **options)
        running.append(s)
        return s

    yield run
    for s in running:
        s.stop(timeout=10)


# -- endpoints, without a browser ---------------------------------------------------------------


def test_group_json_has_labels_holes_and_paths(tmp_path, server):
    m = psii(tmp_path)
    url = server(m).url
    status, _, body = request(url, "/_view/groups")
    assert status == 200
    assert json.loads(body) == [
        {"path": "", "dims": list(m.nodes[0].dims), "shape": list(m.nodes[0].shape)}
    ]
    status, resp, body = request(url, "/_view/group/")
    assert status == 200
    assert resp.getheader("Content-Type").startswith("application/json")
    doc = json.loads(body)
    node = m.nodes[0]
    assert doc["dims"] == ["barcode", "night", "param", "frame"]
    assert doc["labels"]["barcode"] == ["A1", "A2", "A3", "A4"]
    assert doc["labels"]["night"] == ["2020-05-31", "2020-06-01"]
    assert doc["labels"]["param"] == ["PSII0", "PSII1"]
    flat = node.file_index.ravel()
    assert doc["present"] == [int(i >= 0) for i in flat]
    assert doc["present"].count(0) == 8  # two (plant, night) visits x 2 steps x 2 frames
    assert doc["paths"] == [m.files.paths[i] if i >= 0 else None for i in flat]
    timestamp = node.coords["timestamp"]
    assert doc["coords"]["timestamp"]["dims"] == list(timestamp.dims)
    assert doc["coords"]["timestamp"]["values"] == [format_label(v) for v in timestamp.values]
    assert request(url, "/_view/group/nope")[0] == 404


def test_thumbnail_is_the_downscaled_image(tmp_path, server):
    m = psii(tmp_path)
    url = server(m).url
    node = m.nodes[0]
    index = (1, 0, 1, 1)
    pixels = imagecodecs.imread(imagezarr.open_manifest(m).location(int(node.file_index[index])))
    status, resp, body = request(url, "/_view/thumb/1/0/1/1?size=16")
    assert status == 200
    assert resp.getheader("Content-Type") == "image/png"
    thumb = imagecodecs.png_decode(body)
    step = math.ceil(40 / 16)
    assert thumb.shape == (math.ceil(30 / step), math.ceil(40 / step))
    assert thumb.dtype == np.uint8
    np.testing.assert_array_equal(thumb, half_up(block_means(pixels, step)))
    # full resolution: the file's pixels as stored (uint8)
    full = imagecodecs.png_decode(request(url, "/_view/image/1/0/1/1")[2])
    np.testing.assert_array_equal(full, pixels)
    # a hole is a 404, as are indices outside the shape and a bad query a 400
    hole = tuple(int(i) for i in np.argwhere(node.file_index < 0)[0])
    status, _, body = request(url, "/_view/thumb/" + "/".join(map(str, hole)))
    assert status == 404
    assert b"hole" in body
    assert request(url, "/_view/thumb/9/0/0/0")[0] == 404
    assert request(url, "/_view/thumb/0/0/0")[0] == 404
    assert request(url, "/_view/thumb/0/0/0/0?min=nan")[0] == 400
    assert request(url, "/_view/thumb/0/0/0/0?size=big")[0] == 400


def test_16_bit_contrast_stretch(tmp_path, server):
    m = u16(tmp_path)
    url = server(m).url
    pixels = imagecodecs.imread(imagezarr.open_manifest(m).location(int(m.nodes[0].file_index[1])))
    assert pixels.dtype == np.uint16
    # given limits: (v - min) * 255 / (max - min), rounded, clipped
    status, resp, body = request(url, "/_view/thumb/1?size=4&min=1000&max=60000")
    assert status == 200
    step = math.ceil(11 / 4)
    expected = (block_means(pixels, step) - 1000) * (255 / 59000) + 0.5
    expected = np.clip(expected, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(imagecodecs.png_decode(body), expected)
    assert resp.getheader("X-Imagezarr-Min") == "1000"
    # auto: the 0.5 and 99.5 percentiles, reported in headers with the data range
    status, resp, body = request(url, "/_view/image/1")
    lo, hi = np.percentile(pixels, (0.5, 99.5))
    assert float(resp.getheader("X-Imagezarr-Min")) == pytest.approx(lo, rel=1e-5)
    assert float(resp.getheader("X-Imagezarr-Max")) == pytest.approx(hi, rel=1e-5)
    assert float(resp.getheader("X-Imagezarr-Data-Max")) == pixels.max()
    assert resp.getheader("X-Imagezarr-Dtype") == "uint16"
    shown = imagecodecs.png_decode(body)
    assert shown.shape == pixels.shape
    assert shown.min() == 0
    assert shown.max() == 255


def test_remote_root_thumbnail(tmp_path, server):
    """An S3 root (moto) has no cheap sync reads: read on the loop, decode in the pool."""
    pytest.importorskip("moto.server")
    pytest.importorskip("obstore")
    local = u16(tmp_path)
    with loopback_s3() as s3:
        url = s3.upload(local.root, local.files.paths, "view-exp")
        m = imagezarr.scan(url, pattern=r"(?P<sample>s\d+)\.png", storage_options=s3.options)
        assert not imagezarr.open_manifest(m, storage_options=s3.options).source.sync_reads
        base = server(m, storage_options=s3.options).url
        pixels = imagecodecs.imread(
            imagezarr.open_manifest(local).location(int(local.nodes[0].file_index[0]))
        )
        status, _, body = request(base, "/_view/thumb/0?size=4&min=0&max=65535")
        assert status == 200
        want = np.clip(block_means(pixels, 3) * (255 / 65535) + 0.5, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(imagecodecs.png_decode(body), want)
        s3.client.put_object(Bucket="lab", Key=f"view-exp/{m.files.paths[0]}", Body=b"not png")
        status, _, body = request(base, "/_view/image/0")
        assert status == 409
        assert m.files.paths[0] in body.decode()


def test_rgb_thumbnail_keeps_its_channels(tmp_path, server):
    m = rgb(tmp_path)
    url = server(m).url
    pixels = imagecodecs.imread(imagezarr.open_manifest(m).location(int(m.nodes[0].file_index[0])))
    thumb = imagecodecs.png_decode(request(url, "/_view/thumb/0?size=4")[2])
    np.testing.assert_array_equal(thumb, half_up(block_means(pixels, 2)))


def test_page_and_files_are_served_from_the_package(tmp_path, server):
    url = server(psii(tmp_path)).url
    status, resp, body = request(url, "/_view/")
    assert status == 200
    assert resp.getheader("Content-Type").startswith("text/html")
    assert b'<script src="app.js">' in body
    assert b"http" not in body.replace(b"http-equiv", b"")  # nothing fetched from elsewhere
    for name, kind in (("app.js", "text/javascript"), ("view.css", "text/css")):
        status, resp, body = request(url, f"/_view/{name}")
        assert status == 200
        assert resp.getheader("Content-Type").startswith(kind)
        assert b"https://" not in body
    status, resp, _ = request(url, "/_view?token=x")
    assert status == 302
    assert resp.getheader("Location") == "/_view/?token=x"
    # the hierarchy is served as before
    assert request(url, "/zarr.json")[0] == 200


def test_viewer_routes_refuse_paths_outside(tmp_path, server):
    m = psii(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    url = server(m).url
    attempts = [
        "/_view/../secret.txt",
        "/_view/%2e%2e/secret.txt",
        "/_view/%2e%2e/%2e%2e/secret.txt",
        "/_view/..%2fsecret.txt",
        "/_view/app.js/../../secret.txt",
        "/_view/group/%2e%2e",
        "/_view/group/..%2f..%2fsecret.txt",
        "/_view/thumb/%2e%2e/0/0/0/0",
        "/_view/thumb/0/0/0/0/..",
        "/_view/__init__.py",
        "/_view/" + str(secret),
        "/_view/thumb/" + m.files.paths[0],
        "/_view/%00",
        "/_view/..%5c..%5csecret.txt",
    ]
    for path in attempts:
        status, _, body = request(url, path)
        assert status in (400, 404), path
        assert b"root:x" not in body, path
        assert b'"""' not in body, path


def test_token_applies_to_viewer_routes(tmp_path, server):
    url = server(psii(tmp_path), token="s3cret").url
    for path in (
        "/_view/groups",
        "/_view/group/",
        "/_view/thumb/0/0/0/0",
    ):
        assert request(url, path)[0] == 401, path
        assert request(url, path + "?token=wrong")[0] == 401, path
        assert request(url, path + "?token=s3cret")[0] == 200, path
        assert request(url, path, {"Authorization": "Bearer s3cret"})[0] == 200, path
    # the page's own files hold no data: the page loads, then sends the token from its fragment
    for path in ("/_view", "/_view/", "/_view/index.html", "/_view/app.js", "/_view/view.css"):
        assert request(url, path)[0] in (200, 302), path
    assert request(url, "/zarr.json")[0] == 401


def test_viewer_url_and_cli_help(capsys):
    assert viewer_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/_view/"
    assert (
        viewer_url("http://[::1]:9/", "a b", "g/h")
        == "http://[::1]:9/_view/?group=g%2Fh#token=a%20b"
    )
    assert main(["view", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--port", "--no-browser", "--host", "--token"):
        assert option in out


def test_cli_view_opens_the_page(tmp_path, monkeypatch, capsys):
    """``imagezarr view`` prints the page's URL, opens it, and serves it (until Ctrl-C)."""
    import imagezarr.serve._run as run

    manifest = psii(tmp_path).save(tmp_path / "psii.imagezarr.json")
    opened: list[str] = []
    fetched: list[int] = []

    def fake_open(page: str) -> bool:
        opened.append(page)
        base = page.split("#")[0]
        fetched.append(request(base, urlsplit(base).path + "groups?token=s3cret")[0])
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C
        return True

    monkeypatch.setattr("webbrowser.open", fake_open)
    monkeypatch.setattr(run, "_SHUTDOWN", 0.1)
    assert main(["view", str(manifest), "--token", "s3cret"]) == 0
    out = capsys.readouterr().out
    assert opened[0].endswith("/_view/#token=s3cret")
    assert fetched == [200]
    assert "#token=TOKEN" in out
    assert "s3cret" not in out
    # the first line is the viewer's page, not the server's root (a directory listing)
    assert out.splitlines()[0].startswith("open http://127.0.0.1:")
    assert out.splitlines()[0].endswith("/_view/#token=TOKEN")
    assert main(["view", str(manifest), "--group", "nope", "--no-browser"]) == 2


# -- the page in a real browser -----------------------------------------------------------------


def _chromium() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
    browser = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no chromium/chromedriver found: apt-get install chromium chromium-driver "
            "(make test does it when run as root)"
        )
    return browser, driver


@pytest.fixture
def browser():
    from selenium import webdriver

    binary, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1200,800")
    d = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def wait(d, condition, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout).until(lambda d: condition(d))


def texts(d, css: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in d.find_elements(By.CSS_SELECTOR, css)]


def thumbs_loaded(d) -> bool:
    return d.execute_script(
        "const imgs = [...document.querySelectorAll('.cell img')];"
        "return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);"
    )


def test_page_grid_labels_holes_and_full_view(tmp_path, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    m = psii(tmp_path)
    node = m.nodes[0]
    url = server(m, token="s3cret").url
    browser.get(viewer_url(url, "s3cret"))  # the token travels in the fragment
    wait(browser, lambda d: d.find_element(By.ID, "grid").get_attribute("data-ready") == "1")
    # rows barcode, columns night; param and frame chosen by their labels
    assert texts(browser, "#grid th.row") == ["A1", "A2", "A3", "A4"]
    assert texts(browser, "#grid th.col") == ["2020-05-31", "2020-06-01"]
    param = Select(browser.find_element(By.CSS_SELECTOR, "select[data-dim=param]"))
    assert [o.text for o in param.options] == ["PSII0", "PSII1"]
    frame = Select(browser.find_element(By.CSS_SELECTOR, "select[data-dim=frame]"))
    assert [o.text for o in frame.options] == ["1", "2"]
    present = node.file_index[:, :, 0, 0] >= 0
    assert len(browser.find_elements(By.CSS_SELECTOR, ".cell img")) == present.sum() == 6
    assert len(browser.find_elements(By.CSS_SELECTOR, ".cell.hole")) == (~present).sum() == 2
    holes = [e.get_attribute("data-index") for e in browser.find_elements(By.CSS_SELECTOR, ".hole")]
    assert holes == [",".join(map(str, (*ix, 0, 0))) for ix in np.argwhere(~present)]
    wait(browser, thumbs_loaded)
    browser.save_screenshot(str(tmp_path / "grid.png"))

    param.select_by_visible_text("PSII1")  # another selection re-renders the grid
    wait(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, ".cell").get_attribute("data-index") == "0,0,1,0",
    )
    wait(browser, thumbs_loaded)

    # a cell opens the full image with its file path and coordinates
    browser.find_element(By.CSS_SELECTOR, '.cell[data-index="1,1,1,0"]').click()
    wait(browser, lambda d: d.find_element(By.ID, "full").is_displayed())
    wait(browser, lambda d: d.execute_script("return view.bitmap !== null"))
    assert browser.find_element(By.ID, "path").text == m.files.paths[node.file_index[1, 1, 1, 0]]
    rows = dict(zip(texts(browser, "#coords th"), texts(browser, "#coords td"), strict=True))
    assert rows["barcode"] == "A2"
    assert rows["night"] == "2020-06-01"
    assert rows["param"] == "PSII1"
    assert rows["frame"] == "1"
    assert rows["timestamp"] == format_label(node.coords["timestamp"].values[1 * 4 + 1 * 2 + 1])
    assert browser.execute_script("return [view.bitmap.width, view.bitmap.height]") == [40, 30]
    # wheel zooms in around the pointer, dragging pans
    before = browser.execute_script("return view.scale")
    stage = browser.find_element(By.ID, "stage")
    browser.execute_script(
        "arguments[0].dispatchEvent(new WheelEvent('wheel', {deltaY: -400, clientX: 300,"
        " clientY: 300, bubbles: true, cancelable: true}))",
        stage,
    )
    assert browser.execute_script("return view.scale") > before * 1.5
    x0 = browser.execute_script("return view.x")
    ActionChains(browser).move_to_element(stage).click_and_hold().move_by_offset(
        60, 0
    ).release().perform()
    assert browser.execute_script("return view.x") == pytest.approx(x0 + 60, abs=2)
    browser.save_screenshot(str(tmp_path / "full.png"))
    browser.find_element(By.ID, "close").click()
    assert not browser.find_element(By.ID, "full").is_displayed()
    assert [e["message"] for e in browser.get_log("browser") if "favicon" not in e["message"]] == []


def test_page_16_bit_contrast_controls(tmp_path, server, browser):
    from selenium.webdriver.common.by import By

    m = u16(tmp_path)
    url = server(m).url
    browser.get(viewer_url(url))
    wait(browser, lambda d: d.find_element(By.ID, "grid").get_attribute("data-ready") == "1")
    assert texts(browser, "#grid th.col") == ["s0", "s1", "s2"]
    assert texts(browser, "#grid th.row") == [""]
    wait(browser, thumbs_loaded)
    browser.find_element(By.CSS_SELECTOR, '.cell[data-index="2"]').click()
    wait(browser, lambda d: d.execute_script("return view.bitmap !== null"))
    pixels = imagecodecs.imread(imagezarr.open_manifest(m).location(int(m.nodes[0].file_index[2])))
    assert "uint16" in browser.find_element(By.ID, "range").text
    slider = browser.find_element(By.ID, "max")
    assert float(slider.get_attribute("max")) == pixels.max()
    lo, hi = np.percentile(pixels, (0.5, 99.5))
    assert float(slider.get_attribute("value")) == pytest.approx(hi, abs=1)
    assert float(browser.find_element(By.ID, "min").get_attribute("value")) == pytest.approx(
        lo, abs=1
    )
    # moving a slider turns auto off and asks for the new limits
    browser.execute_script(
        "const s = document.getElementById('max'); s.value = 30000;"
        "s.dispatchEvent(new Event('input'));"
    )
    assert not browser.find_element(By.ID, "auto").is_selected()
    wait(browser, lambda d: d.execute_script("return state.full.hi") == 30000)
    time.sleep(0.5)
    browser.save_screenshot(str(tmp_path / "contrast.png"))
    assert os.path.getsize(tmp_path / "contrast.png") > 0
