"""The real app in a real browser: `streamlit run` on a free port, driven by Playwright.

Uses Debian's Chromium (/usr/bin/chromium). Without it these tests skip, except
with CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-results"
CAT_CLASSES = ("Egyptian cat", "tiger cat", "tabby")
pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, lite0):
    """Run `streamlit run streamlit_app.py` with its own history database."""
    _require_chromium()
    port = _free_port()
    folder = tmp_path_factory.mktemp("server")
    env = {
        **os.environ,
        "CLASSIFIER_MODEL": "efficientnet_lite0",
        "CLASSIFIER_DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start:\n{process.communicate()[0]}")
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server)
    page.get_by_text("What's in this photo?").wait_for()
    yield page
    context.close()


def test_upload_a_photo_then_a_corrupt_file(page, photo_files, tmp_path):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.locator("input[type=file]").set_input_files(str(photo_files["chelsea"]))
    headline = page.locator("h3").filter(has_text="·").first
    headline.wait_for()
    assert any(label in headline.inner_text() for label in CAT_CLASSES)
    page.locator(
        "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
    ).first.wait_for()
    page.get_by_text("chelsea.png").first.wait_for()
    page.wait_for_timeout(500)  # let the chart finish its entry transition
    page.screenshot(path=str(SCREENSHOTS / "classify.png"), full_page=True)

    corrupt = tmp_path / "holiday.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this JPEG stops right here")
    page.locator("input[type=file]").set_input_files(str(corrupt))
    alert = page.locator("[data-testid='stAlert']").filter(has_text="incomplete or damaged")
    alert.wait_for()
    page.screenshot(path=str(SCREENSHOTS / "classify-error.png"), full_page=True)
    assert "Traceback" not in page.content()


def test_history_shows_the_new_entry_and_exports_it(page, server, photo_files):
    page.locator("input[type=file]").set_input_files(str(photo_files["coffee"]))
    page.locator("h3").filter(has_text="espresso").wait_for()
    page.goto(f"{server}/history")
    page.get_by_text("saved predictions match the filters").wait_for()
    grid = page.locator("[data-testid='stDataFrame']").first
    cells = grid.locator("[role='gridcell']")
    cells.first.wait_for(state="attached")
    # The grid draws on a canvas; its accessible cells carry the values, newest row first.
    picture, _time, file_name, top1 = (cells.nth(i).inner_text() for i in range(4))
    assert picture.startswith("data:image/webp;base64,")
    assert (file_name, top1) == ("coffee.jpg", "espresso")
    page.wait_for_timeout(1000)  # let the thumbnails paint before the screenshot
    page.screenshot(path=str(SCREENSHOTS / "history.png"), full_page=True)

    # The export holds exactly the rows the filters select.
    page.get_by_label("Label contains").fill("espresso")
    page.get_by_label("Label contains").press("Enter")
    page.get_by_text("1 of 2 saved predictions match the filters.").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV (1)").click()
    header, *rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert header.startswith("id,created_at,file_name,")
    assert len(rows) == 1
    assert ",coffee.jpg," in rows[0] and ",espresso," in rows[0]
