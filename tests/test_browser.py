"""The real app in a real browser: `streamlit run` on a free port, driven by Playwright.

Uses Debian's Chromium (/usr/bin/chromium). Without it these tests skip, except
with CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from benchmarks import server as server_tools
from classifier import models
from classifier.images import CROP_FRACTION
from tests import onnx_files
from tests.conftest import ROOT
from tests.helpers import CAT_CLASSES

SCREENSHOTS = ROOT / "test-results"
pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    reason = server_tools.chromium_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory, lite0):
    """The app as a person runs it."""
    _require_chromium()
    with server_tools.serve(tmp_path_factory.mktemp("server")) as running:
        yield running.url


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    with server_tools.chromium() as chromium:
        yield chromium


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


def test_the_charts_code_is_loaded_while_the_page_waits_for_a_photo(browser, server, photo_files):
    # Waiting for a photo, the page has fetched the chart's code, and shows no chart,
    # table or picture of its own: the stand-in answer is out of sight and of the
    # accessibility tree, and the keyboard never reaches it.
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    context.add_init_script("performance.setResourceTimingBufferSize(5000)")  # every file
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server)
    stand_in = page.locator(".st-key-answer_warm_up")
    stand_in.locator("[data-testid='stVegaLiteChart'] :is(canvas, svg)").wait_for(state="attached")
    loaded = """() => performance.getEntriesByType("resource")
        .filter((entry) => entry.name.includes("ArrowVegaLiteChart"))
        .map((entry) => entry.startTime)"""
    fetched = page.evaluate(loaded)
    assert len(fetched) == 1
    charts = page.locator("[data-testid='stVegaLiteChart']")
    assert charts.count() == 1 and not charts.first.is_visible()
    expect(page.get_by_role("table")).to_have_count(0)
    assert stand_in.get_by_role("img").count() == 0  # its picture is not announced
    assert stand_in.get_by_role("img", include_hidden=True).count() >= 1
    box = stand_in.bounding_box()
    assert box["x"] + box["width"] < 0  # left of the window
    assert page.evaluate("document.documentElement.scrollWidth") == 390  # no sideways scroll
    for _ in range(40):  # Tab through the whole page: never into the stand-in
        page.keyboard.press("Tab")
        assert not page.evaluate(
            "document.activeElement.closest('.st-key-answer_warm_up') !== null"
        )

    # The answer draws its chart with that code; the stand-in is gone.
    page.locator("input[type=file]").set_input_files(str(photo_files["chelsea"]))
    expect(charts.locator("canvas, svg").first).to_be_visible(timeout=WAIT)
    _wait_until_the_page_is_drawn(page)
    expect(charts).to_have_count(1)
    assert page.evaluate(loaded) == fetched  # not fetched again
    assert page.locator(".st-key-answer_warm_up").count() == 0
    assert page.get_by_role("table").count() == 1
    context.close()


def test_history_shows_the_new_entry_and_exports_it(page, server, photo_files):
    page.locator("input[type=file]").set_input_files(str(photo_files["coffee"]))
    page.locator("h3").filter(has_text="espresso").wait_for()
    page.goto(f"{server}/history")
    listed = page.get_by_text("saved predictions match the filters")
    listed.wait_for()
    saved = re.search(r" of ([\d,]+) saved predictions", listed.inner_text()).group(1)
    grid = page.locator("[data-testid='stDataFrame']").first
    cells = grid.locator("[role='gridcell']")
    cells.first.wait_for(state="attached")
    # The grid draws on a canvas; its accessible cells carry the values, newest row first.
    link, top1, _confidence, picture, _looked, _time, file_name = (
        cells.nth(i).inner_text() for i in range(7)
    )
    assert link.startswith("?prediction=")  # the Open link, first: in sight on a phone
    assert picture.startswith("data:image/webp;base64,")
    assert (file_name, top1) == ("coffee.jpg", "espresso")
    page.wait_for_timeout(1000)  # let the thumbnails paint before the screenshot
    page.screenshot(path=str(SCREENSHOTS / "history.png"), full_page=True)

    # The export holds exactly the rows the filters select.
    page.get_by_label("Label contains").fill("espresso")
    page.get_by_label("Label contains").press("Enter")
    page.get_by_text(f"1 of {saved} saved predictions match the filters.").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV (1)").click()
    header, *rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert header.startswith("id,public_id,link,created_at,file_name,")  # links that open
    assert len(rows) == 1
    assert f",{server}/history?prediction=" in rows[0]
    assert ",coffee.jpg," in rows[0] and ",espresso," in rows[0]


@pytest.fixture(scope="module")
def misconfigured_server(tmp_path_factory):
    """The app started with a mistyped setting."""
    with server_tools.serve(
        tmp_path_factory.mktemp("misconfigured"), CLASSIFIER_MAX_BYTES="abc"
    ) as running:
        yield running.url


@pytest.mark.parametrize("path", ["", "classify", "history", "teach", "models", "common"])
def test_every_url_says_what_is_misconfigured(browser, misconfigured_server, path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{misconfigured_server}/{path}")
        message = page.get_by_text("The app is misconfigured")
        message.wait_for()
        assert "CLASSIFIER_MAX_BYTES" in message.inner_text()
        body = page.locator("body").inner_text()
        assert "Traceback" not in body
        navigation = page.get_by_test_id("stSidebarNav").inner_text()
        assert "Classify" in navigation and "common" not in navigation.lower()
    finally:
        context.close()


def test_a_2_gib_server_survives_four_sessions_uploading_the_heaviest_picture(
    browser, tmp_path, lite0
):
    """Like a small hosting tier: over 2 GiB the kernel kills the server for every visitor."""
    unsupported = server_tools.memory_limit_unsupported()
    if unsupported:
        pytest.skip(f"cannot hold a server to a memory limit here: {unsupported}")
    with server_tools.serve(tmp_path, memory_limit=2 * 2**30) as running:
        server_tools.concurrent_uploads(browser, running, server_tools.float_tiff())
        assert running.alive()
        page = server_tools.open_classify_page(browser, running)
        server_tools.upload(
            page, "after.jpg", (ROOT / "assets/examples/cat.jpg").read_bytes(), "image/jpeg"
        )
        assert "·" in page.locator("h3").first.inner_text()  # the server still answers
        page.context.close()


def test_an_oversized_file_is_refused_with_one_limit_in_one_unit(page, tmp_path):
    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff\xd8\xff\xe0" + bytes(24 * 2**20))  # 25.2 MB, over the 20 MB limit
    uploader = page.get_by_test_id("stFileUploader")
    expect(uploader).to_contain_text("20MB per file")
    page.locator("input[type=file]").set_input_files(str(big))
    expect(uploader).to_contain_text("25.2MB", timeout=WAIT)  # the uploader's own refusal
    expect(uploader).to_contain_text("File must be 20.0MB or smaller.")
    body = page.locator("body").inner_text()
    assert "200MB" not in body and "up to 20 MB" not in body  # the limit is said once


def test_a_correction_may_be_a_name_outside_the_classes(page, photo_files):
    page.locator("input[type=file]").set_input_files(str(photo_files["chelsea"]))
    page.get_by_text("Was this right?").wait_for()
    thumbs = page.locator("[class*='st-key-feedback_'] button")
    thumbs.last.click()  # thumbs down
    box = page.locator("[class*='st-key-correction_'] input")
    box.fill("giraffe")
    box.press("Enter")
    page.get_by_text("your own name, not one of the model's 1,000 classes").wait_for()


def test_the_models_own_answer_typed_as_a_correction_is_cleared_and_said(page, photo_files):
    page.locator("input[type=file]").set_input_files(str(photo_files["coffee"]))
    page.locator("h3").filter(has_text="espresso").wait_for()
    page.locator("[class*='st-key-feedback_'] button").last.click()  # thumbs down
    _wait_until_the_page_is_drawn(page)
    box = page.locator("[class*='st-key-correction_'] input")
    box.fill("Espresso")
    box.press("Enter")
    said = page.get_by_text("Espresso is the model's own answer")
    said.wait_for()
    page.get_by_text("Saved: wrong.").wait_for()
    expect(box).to_have_value("")  # the box in the browser is emptied too
    box.fill("tea cup")
    page.get_by_role("option", name="tea cup", exact=True).click()
    page.get_by_text("Saved: wrong, it is tea cup.").wait_for()
    expect(said).to_have_count(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("device", "width"), [("desktop", 1280), ("phone", 390)])
def test_screenshots_in_both_themes(browser, server, photo_files, scheme, device, width):
    """The pages as a person sees them, in the theme their system asks for."""
    SCREENSHOTS.mkdir(exist_ok=True)
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, device_scale_factor=1
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(server)
        page.get_by_text("What's in this photo?").wait_for()
        background = page.evaluate(
            "getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
        )
        red, green, blue = (int(part) for part in background[4:-1].split(","))
        assert (red + green + blue > 600) == (scheme == "light"), background
        icon = page.locator("link[rel*='icon']").first.get_attribute("href")
        assert not icon.startswith(("http://", "https://", "//")) or icon.startswith(server)
        page.get_by_role("button", name="Cat", exact=True).click()
        page.locator("h3").filter(has_text="·").first.wait_for()
        page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).first.wait_for()
        page.wait_for_timeout(800)  # the chart's entry transition
        page.screenshot(path=str(SCREENSHOTS / f"classify-{scheme}-{device}.png"), full_page=True)
        page.locator("input[type=file]").set_input_files(str(photo_files["coffee"]))  # kept
        page.locator("h3").filter(has_text="espresso").wait_for()  # (an example is not)
        page.goto(f"{server}/history")
        page.get_by_text("saved predictions match the filters").wait_for()
        page.wait_for_timeout(1000)  # thumbnails paint
        page.screenshot(path=str(SCREENSHOTS / f"history-{scheme}-{device}.png"), full_page=True)
    finally:
        context.close()


def test_a_typed_date_applies(page, server, photo_files):
    page.locator("input[type=file]").set_input_files(str(photo_files["coffee"]))
    page.locator("h3").filter(has_text="espresso").wait_for()
    page.goto(f"{server}/history")
    page.get_by_text("saved predictions match the filters").wait_for()
    since = page.locator(".st-key-h_from input")
    since.scroll_into_view_if_needed()
    since.focus()
    since.type("2099-01-01")
    since.press("Enter")
    page.get_by_text("No saved predictions match these filters.").wait_for()
    assert page.get_by_text("0 of ").first.is_visible()


def test_reset_filters_empties_the_boxes_and_the_next_filter_does_not_bring_them_back(
    page, server, photo_files
):
    """Reset puts each filter back in the browser too: a box still showing its old words
    would send them back with the next change of another filter, and the rows would go."""
    page.locator("input[type=file]").set_input_files(str(photo_files["coffee"]))
    page.locator("h3").filter(has_text="espresso").wait_for()
    page.locator("input[type=file]").set_input_files(str(photo_files["chelsea"]))  # a cat
    # Its answer is drawn (in its own tab, beside the coffee's) once it is saved.
    page.locator("h3").filter(has_text=re.compile("|".join(CAT_CLASSES))).wait_for(state="attached")
    page.goto(f"{server}/history")
    everything = page.get_by_text(re.compile(r"^([\d,]+) of \1 saved predictions match"))
    everything.wait_for()
    some = page.get_by_text(re.compile(r"^(?!([\d,]+) of \1 saved)[1-9][\d,]* of [\d,]+ saved"))
    nothing = page.get_by_text("No saved predictions match these filters.")
    label, since = page.locator(".st-key-h_label input"), page.locator(".st-key-h_from input")

    since.fill("2099-01-01")
    since.press("Enter")
    nothing.wait_for()
    page.locator(".st-key-h_reset_empty button").click()  # the empty state's own button
    everything.wait_for()
    expect(since).to_have_value("")
    label.fill("espresso")  # the next change: had the date come back, nothing would match
    label.press("Enter")
    expect(some).to_be_visible()  # (some rows, not all: this change was applied)
    expect(nothing).to_have_count(0)
    expect(since).to_have_value("")

    label.fill("no such class")
    label.press("Enter")
    nothing.wait_for()
    page.locator(".st-key-h_reset button").click()  # the sidebar's
    everything.wait_for()
    expect(label).to_have_value("")
    since.fill("not a day")  # the next change: had the label come back, nothing would match
    since.press("Enter")
    expect(page.get_by_text("Not a date; write it as")).to_be_visible()  # (it was applied)
    expect(everything).to_be_visible()
    expect(nothing).to_have_count(0)
    expect(label).to_have_value("")


def test_a_database_password_never_reaches_the_page_or_the_server_log(browser, tmp_path):
    # A generated password with "@" and ":" that nobody percent-encoded; port 1 is closed.
    secrets = ("p@ss:w0rd", "ss:w0rd", "w0rd")
    url = "postgresql://user:p@ss:w0rd@127.0.0.1:1/history"
    with server_tools.serve(tmp_path, CLASSIFIER_DATABASE_URL=url) as running:
        page = server_tools.open_classify_page(browser, running)
        coffee = (ROOT / "assets" / "examples" / "coffee.jpg").read_bytes()
        server_tools.upload(page, "coffee.jpg", coffee, "image/jpeg")
        page.get_by_text("could not be saved to the history").wait_for()
        classify_text = page.locator("body").inner_text()
        page.goto(f"{running.url}/history")
        page.get_by_text("The history database").first.wait_for()
        history_text = page.locator("body").inner_text()
        page.context.close()
    log = running.log.read_text()
    assert "history database" in history_text.lower()
    for text in (classify_text, history_text, log):
        assert [secret for secret in secrets if secret in text] == []


@pytest.fixture(scope="module")
def teachable_machine_zip(tmp_path_factory) -> Path:
    """A Teachable Machine Keras export (Keras 2 HDF5 + labels.txt), made with tf-keras."""
    from classifier import images
    from tests import model_fixtures as mf

    examples = ROOT / "assets" / "examples"
    pictures = [
        images.fit_to_input(images.decode_image((examples / f"{n}.jpg").read_bytes()).image, 224, 1)
        for n in ("cat", "coffee", "rocket")
    ]
    folder = tmp_path_factory.mktemp("teachable-machine")
    mf.build_teachable_machine_model(pictures).save(folder / "keras_model.h5")
    archive = folder / "converted_keras.zip"
    archive.write_bytes(
        mf.zip_of(
            {
                "keras_model.h5": (folder / "keras_model.h5").read_bytes(),
                "labels.txt": mf.teachable_machine_labels(),
            }
        )
    )
    return archive


def test_add_a_teachable_machine_zip_then_classify_correct_and_find_it_in_history(
    browser, tmp_path_factory, teachable_machine_zip, lite0
):
    SCREENSHOTS.mkdir(exist_ok=True)
    with _own_server_page(browser, tmp_path_factory.mktemp("own-model")) as page:
        page.get_by_text("What's in this photo?").wait_for()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Models").click()
        page.get_by_role("heading", name="Add a model").wait_for()
        page.locator("input[type=file]").first.set_input_files(str(teachable_machine_zip))
        page.get_by_text("Teachable Machine zip (keras_model.h5): 3 classes").wait_for(
            timeout=300_000  # the Keras file is converted to LiteRT in a child process
        )
        page.get_by_text("Classes: Cat, Coffee, Rocket").wait_for()
        name = page.get_by_label("Name")
        name.fill("Desk things")
        name.press("Enter")
        page.get_by_role("button", name="Add model").click()
        page.get_by_text("Added Desk things.").wait_for()
        page.screenshot(path=str(SCREENSHOTS / "models-added.png"), full_page=True)

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Classify").click()
        page.get_by_text("What's in this photo?").wait_for()
        picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
        chosen = picker.locator("input").first.input_value() or picker.inner_text()
        assert "Desk things (added)" in chosen  # picked for the person
        page.locator("input[type=file]").set_input_files(
            str(ROOT / "assets" / "examples" / "coffee.jpg")
        )
        page.locator("h3").filter(has_text="Coffee ·").wait_for()
        table = page.get_by_test_id("stTable").first
        table.locator("tbody tr").first.wait_for()
        cells = table.locator("tbody td").all_inner_texts()
        assert {"Coffee", "Cat", "Rocket"} <= set(cells)  # its own classes, not ImageNet's
        page.get_by_text("Added model: Teachable Machine zip (keras_model.h5)").wait_for()

        page.locator("[class*='st-key-feedback_'] button").last.click()  # thumbs down
        box = page.locator("[class*='st-key-correction_'] input")
        for _ in range(3):  # the box may be redrawn by the rerun the thumbs started
            box.click()
            try:
                page.get_by_role("option").first.wait_for(timeout=10_000)
                break
            except PlaywrightTimeout:
                continue
        options = page.get_by_role("option").all_inner_texts()
        assert sorted(options) == ["Cat", "Rocket"]  # its classes but its own answer
        page.get_by_role("option", name="Rocket").click()
        page.get_by_text("Saved: wrong, it is Rocket.").wait_for()
        page.screenshot(path=str(SCREENSHOTS / "classify-added-model.png"), full_page=True)

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="History").click()
        page.get_by_text("saved predictions match the filters").wait_for()
        history_cells = page.locator("[data-testid='stDataFrame']").first.locator(
            "[role='gridcell']"
        )
        history_cells.first.wait_for(state="attached")
        texts = history_cells.all_inner_texts()
        assert "Desk things" in texts and "Coffee" in texts and "Rocket" in texts
        assert "Traceback" not in page.content()


@onnx_files.needs_torch
def test_add_an_onnx_file_and_its_labels_then_classify_and_correct_with_its_classes(
    browser, tmp_path, tmp_path_factory, lite0
):
    from tests.onnx_files import TM_LABELS, desk_things_onnx

    exported = desk_things_onnx(tmp_path / "desk_things.onnx")  # as torch.onnx.export writes
    labels = tmp_path / "labels.txt"
    labels.write_bytes(TM_LABELS)
    with _own_server_page(browser, tmp_path_factory.mktemp("onnx-model")) as page:
        page.get_by_text("What's in this photo?").wait_for()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Models").click()
        page.get_by_role("heading", name="Add a model").wait_for()
        uploaders = page.locator("input[type=file]")
        uploaders.nth(1).set_input_files(str(labels))  # the labels file's own uploader
        page.get_by_text("labels.txt").first.wait_for()
        uploaders.first.set_input_files(str(exported.path))
        said = page.get_by_test_id("stAlert").filter(has_text="ONNX file from pytorch")
        expect(said).to_contain_text(
            "3 classes, input 224×224 float32 (NCHW), outputs logits.", timeout=WAIT
        )
        page.get_by_text("Classes: Cat, Coffee, Rocket").wait_for()
        crop = page.get_by_role("combobox", name="Crop")
        expect(crop).to_have_value(models.CROPS[CROP_FRACTION])
        name = page.get_by_label("Name")
        name.fill("Desk things")
        name.press("Enter")
        add = page.get_by_role("button", name="Add model")
        expect(add).to_be_enabled(timeout=WAIT)
        add.click()
        page.get_by_text(
            "Added Desk things. It is now the model picked on the Classify page."
        ).wait_for()
        page.get_by_role("link", name="Classify a photo with it").click()

        page.get_by_text("What's in this photo?").wait_for()
        picker = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model")
        expect(picker).to_have_value("Desk things (added)", timeout=WAIT)
        page.locator("input[type=file]").set_input_files(
            str(ROOT / "assets" / "examples" / "coffee.jpg")
        )
        answer = page.locator("h3").filter(has_text="·").first
        expect(answer).to_have_text(re.compile(r"^Coffee · \d+%$"), timeout=WAIT)
        chart = page.get_by_test_id("stVegaLiteChart").first.locator("svg").first
        expect(chart).to_be_visible(timeout=WAIT)
        drawn = set(chart.locator("text").all_text_contents())
        assert {"Cat", "Coffee", "Rocket"} <= drawn  # its own classes, not ImageNet's
        cells = page.get_by_test_id("stTable").first.locator("tbody td").all_inner_texts()
        assert {"Cat", "Coffee", "Rocket"} <= set(cells)
        expect(page.get_by_text("Added model: ONNX file from pytorch")).to_be_visible()

        page.locator("[class*='st-key-feedback_'] button").last.click()  # thumbs down
        _wait_until_the_page_is_drawn(page)
        box = page.locator("[class*='st-key-correction_'] input")
        options = _open_the_options(page, box)
        assert sorted(options.all_inner_texts()) == ["Cat", "Rocket"]  # but its answer
        page.get_by_role("option", name="Rocket").click()
        page.get_by_text("Saved: wrong, it is Rocket.").wait_for()
        assert "Traceback" not in page.content()


def test_teach_a_two_class_model_train_save_and_classify_with_it(
    browser, tmp_path, tmp_path_factory, lite0
):
    SCREENSHOTS.mkdir(exist_ok=True)
    photos = {
        name: _photo_variations(ROOT / "assets" / "examples" / f"{name.lower()}.jpg", tmp_path)
        for name in ("Cat", "Coffee")
    }
    with _own_server_page(browser, tmp_path_factory.mktemp("teach")) as page:
        page.get_by_text("What's in this photo?").wait_for()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Teach").click()
        title = page.get_by_role("heading", name="Teach a model your own classes")
        expect(title).to_be_visible(timeout=WAIT)

        # The n-th class card holds the n-th name box and the n-th uploader.
        for number, (name, files) in enumerate(photos.items()):
            box = page.get_by_label("Class name").nth(number)
            box.fill(name)
            box.press("Enter")
            expect(box).to_have_value(name, timeout=WAIT)
            page.locator("input[type=file]").nth(number).set_input_files([str(f) for f in files])
            counts = page.get_by_text(f"{len(files)} photos", exact=True)
            expect(counts).to_have_count(number + 1, timeout=WAIT)

        page.get_by_role("button", name="Train").click()
        metric = page.get_by_test_id("stMetric").filter(has_text="Cross-validated accuracy")
        # The first training on a server exports the feature extractor in a child process.
        expect(metric.get_by_test_id("stMetricValue")).to_have_text(
            re.compile(r"^\d+%$"), timeout=300_000
        )
        cells = page.get_by_test_id("stDataFrame").first.locator("[role='gridcell']")
        for name in photos:  # the grid fills in after the metric: wait for each class
            cell = cells.filter(has_text=re.compile(f"^{name}$"))
            expect(cell).to_have_count(1, timeout=WAIT)
        chart = page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).first
        expect(chart).to_be_visible(timeout=WAIT)

        model_name = page.get_by_label("Model name")
        model_name.fill("Cat or coffee")
        model_name.press("Enter")
        save = page.get_by_role("button", name="Save model")
        expect(save).to_be_enabled(timeout=WAIT)
        save.click()
        expect(page.get_by_text("Saved Cat or coffee")).to_be_visible(timeout=WAIT)
        expect(metric).to_be_visible(timeout=WAIT)  # the results stay on the page
        page.wait_for_timeout(800)  # the chart's entry transition
        _screenshot_of_the_whole_page(page, SCREENSHOTS / "teach.png")

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Classify").click()
        page.get_by_text("What's in this photo?").wait_for()
        picker = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model")
        expect(picker).to_have_value("Cat or coffee (taught)", timeout=WAIT)
        page.get_by_role("button", name="Coffee", exact=True).click()
        answer = page.locator("h3").filter(has_text="·").first
        expect(answer).to_have_text(re.compile(r"^Coffee ·"), timeout=WAIT)
        assert "Traceback" not in page.content()


WAIT = 60_000  # ms: how long `expect` waits for a rerun to draw (its default is 5 s)


@contextlib.contextmanager
def _own_server_page(browser, folder: Path):
    """Yield a page on a server of the test's own (its own history and models), opened on `/`."""
    with server_tools.serve(folder) as running:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(running.url)
            yield page
        finally:
            context.close()


def _photo_variations(source: Path, folder: Path) -> list[Path]:
    """Five photos of one thing: the original, mirrored, turned both ways and cropped."""
    from PIL import Image, ImageOps

    original = Image.open(source).convert("RGB")
    width, height = original.size
    variations = {
        "original": original,
        "mirrored": ImageOps.mirror(original),
        "left": original.rotate(8, resample=Image.Resampling.BICUBIC),
        "right": original.rotate(-8, resample=Image.Resampling.BICUBIC),
        "cropped": original.crop((width // 10, height // 10, width * 9 // 10, height * 9 // 10)),
    }
    written = []
    for name, picture in variations.items():
        path = folder / f"{source.stem}-{name}.jpg"
        picture.save(path, "JPEG", quality=90)
        written.append(path)
    return written


def _screenshot_of_the_whole_page(page, path: Path) -> None:
    """Screenshot everything on the page: Streamlit scrolls inside its main block, so a
    `full_page` screenshot stops at the viewport; the viewport grows to fit it instead."""
    viewport = page.viewport_size
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": viewport["width"], "height": max(height, viewport["height"])})
    page.wait_for_timeout(500)  # the chart redraws at the new size
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)


def test_where_it_looked_shows_a_heat_map_that_follows_the_class_picked(page):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.get_by_role("button", name="Cat", exact=True).click()
    answer = page.locator("h3").filter(has_text="·").first
    expect(answer).to_have_text(re.compile(r" · \d+%$"), timeout=WAIT)
    best = _class_of(answer.inner_text())

    page.get_by_text("Where it looked", exact=True).click()
    overlay = _image_captioned(page, "Where it looked for")
    # The first map on a server exports the network's map model in a child process, run
    # under `nice`: on a busy machine that takes minutes rather than seconds.
    expect(overlay.locator("img")).to_be_visible(timeout=300_000)
    caption = overlay.get_by_test_id("stImageCaption")
    expect(caption).to_have_text(
        re.compile(f"^Where it looked for “{re.escape(best)}”"), timeout=WAIT
    )
    legend = _image_captioned(page, "Counted least ← → counted most")
    expect(legend).to_be_visible(timeout=WAIT)
    expect(page.get_by_text(re.compile(r"^Class activation map: "))).to_be_visible(timeout=WAIT)
    first_map = overlay.locator("img").get_attribute("src")
    _wait_until_the_page_is_drawn(page)

    # Another class: another map, and the caption names it.
    second = _open_the_options(page, page.get_by_role("combobox", name="Class")).nth(1)
    other = _class_of(second.inner_text())
    assert other != best
    second.click()
    expect(caption).to_have_text(
        re.compile(f"^Where it looked for “{re.escape(other)}”"), timeout=WAIT
    )
    expect(overlay.locator("img")).not_to_have_attribute("src", first_map, timeout=WAIT)
    second_map = overlay.locator("img").get_attribute("src")
    _wait_until_the_page_is_drawn(page)

    # A stronger overlay redraws the map of the same class.
    slider = page.get_by_role("slider", name="Opacity")
    slider.focus()
    for _ in range(4):
        slider.press("ArrowRight")
    expect(slider).to_have_attribute("aria-valuetext", "0.80", timeout=WAIT)
    expect(overlay.locator("img")).not_to_have_attribute("src", second_map, timeout=WAIT)
    expect(caption).to_have_text(re.compile(f"^Where it looked for “{re.escape(other)}”"))
    _wait_until_the_page_is_drawn(page)
    assert "Traceback" not in page.locator("body").inner_text()

    page.wait_for_timeout(800)  # the chart's entry transition
    _screenshot_of_the_whole_page(page, SCREENSHOTS / "where-it-looked.png")  # docs/ has a copy


def _class_of(label: str) -> str:
    """The class in a label like "tiger cat · 62%"."""
    return label.rsplit(" · ", 1)[0]


def _image_captioned(page, caption: str):
    """Return the picture (with its caption) whose caption contains `caption`."""
    return page.get_by_test_id("stImage").filter(
        has=page.get_by_test_id("stImageCaption").filter(has_text=caption)
    )


def _wait_until_the_page_is_drawn(page) -> None:
    """Wait until the app's "Running…" indicator is gone: a widget used during a rerun may
    be redrawn under the pointer (a selectbox opened then closes again)."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT)


def _open_the_options(page, combobox):
    """Click a selectbox until its options show (a rerun may close it); return them."""
    options = page.get_by_role("option")
    for _ in range(3):
        combobox.click()
        try:
            options.first.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            continue
    return options


# --- Private histories: two people sign in against a local OpenID Connect issuer ------------


@pytest.fixture(scope="module")
def private_server(tmp_path_factory, lite0):
    """The app with sign-in configured (so its history is private), and the issuer it uses."""
    from tests.oidc_issuer import Issuer, auth_secrets

    _require_chromium()
    folder = tmp_path_factory.mktemp("private")
    with Issuer() as issuer:
        secrets = folder / "secrets.toml"
        secrets.write_text(auth_secrets(issuer))
        with server_tools.serve(folder, STREAMLIT_SECRETS_FILES=str(secrets)) as running:
            yield running, folder / "history.db"


def _person(browser, url: str, email: str):
    """A browser context of its own (its own cookies): one person, signed in as `email`."""
    from tests.oidc_issuer import sign_in

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    sign_in(page, email, button="Sign in to keep your history")
    page.get_by_text(f"Signed in as {email}").wait_for()
    return context, page


def _classify(page, photo: Path) -> None:
    """Drop a photo on the Classify page and wait for its answer."""
    page.locator("input[type=file]").set_input_files(str(photo))
    page.get_by_test_id("stText").filter(has_text=photo.name).first.wait_for()
    page.locator("h3").filter(has_text="·").first.wait_for()


def _history_rows(page, url: str, expected: int) -> list[str]:
    """Open the History page; return the file names of its table once it shows `expected`."""
    page.goto(f"{url}/history")
    page.get_by_text(f"{expected} of {expected} saved predictions").wait_for()
    cells = page.get_by_test_id("stDataFrame").first.locator("[role='gridcell']")
    cells.first.wait_for(state="attached")
    texts = cells.all_inner_texts()
    return [text for text in texts if text.endswith((".jpg", ".png"))]


def _first_public_id(database: Path, email: str) -> str:
    """Return the link id of the first prediction a person saved (read from the database)."""
    import sqlite3

    from tests.oidc_issuer import Issuer

    with contextlib.closing(sqlite3.connect(database)) as conn:
        (public_id,) = conn.execute(
            "SELECT public_id FROM predictions WHERE owner LIKE ? ORDER BY id LIMIT 1",
            (f"% {Issuer.subject(email)}",),
        ).fetchone()
    return public_id


def test_two_people_each_see_only_their_own_history(browser, private_server, photo_files):
    server, database = private_server
    alice_context, alice = _person(browser, server.url, "alice@example.com")
    bob_context, bob = _person(browser, server.url, "bob@example.com")
    try:
        _classify(alice, photo_files["chelsea"])
        _classify(bob, photo_files["coffee"])
        bob.reload()  # a new session, still signed in (the cookie)
        bob.get_by_text("Signed in as bob@example.com").wait_for()
        _classify(bob, photo_files["chelsea"])

        assert _history_rows(alice, server.url, 1) == ["chelsea.png"]
        assert sorted(_history_rows(bob, server.url, 2)) == ["chelsea.png", "coffee.jpg"]
        alice.get_by_text("Private history: each person sees only what they saved.").wait_for()

        # Her export holds her one prediction alone, and so does her summary.
        with alice.expect_download() as download:
            alice.get_by_role("button", name="Download CSV (1)").click()
        header, *rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
        assert header.startswith("id,public_id,link,created_at,file_name,")
        assert len(rows) == 1 and ",chelsea.png," in rows[0]
        with bob.expect_download() as download:
            bob.get_by_role("button", name="Download JSON (2)").click()
        assert "coffee.jpg" in Path(download.value.path()).read_text(encoding="utf-8")
        alice.get_by_role("tab", name="Summary").click()
        alice.get_by_text("Predictions per").first.wait_for()
        assert "1 of 1 saved predictions" in alice.locator("body").inner_text()

        # Her permalink opens for her, with picture, chart and feedback, and a link to copy.
        alices = _first_public_id(database, "alice@example.com")
        bobs = _first_public_id(database, "bob@example.com")
        alice.goto(f"{server.url}/history?prediction={alices}")
        alice.get_by_test_id("stVegaLiteChart").first.wait_for()
        alice.get_by_text("Was this right?").wait_for()
        assert alices in alice.get_by_test_id("stCode").inner_text()
        SCREENSHOTS.mkdir(exist_ok=True)
        alice.screenshot(path=str(SCREENSHOTS / "permalink.png"), full_page=True)

        # Bob opening hers, or an id that does not exist, reads the same "not found".
        for probe in (alices, "A" * 22):
            bob.goto(f"{server.url}/history?prediction={probe}")
            bob.get_by_text("Prediction not found.").wait_for()
            assert "Was this right?" not in bob.locator("body").inner_text()
        alice.goto(f"{server.url}/history?prediction={bobs}")
        alice.get_by_text("Prediction not found.").wait_for()

        # Signing out hides her history.
        alice.goto(f"{server.url}/history")
        alice.get_by_text("1 of 1 saved predictions").wait_for()
        with alice.expect_navigation(url=f"{server.url}/"):
            alice.get_by_role("button", name="Sign out").click()
        alice.get_by_role("button", name="Sign in to keep your history").wait_for()
        alice.goto(f"{server.url}/history")
        alice.get_by_text(
            "Sign in to keep your history: each person sees only their own"
        ).wait_for()
        assert "chelsea.png" not in alice.locator("body").inner_text()
        assert alice.get_by_test_id("stDataFrame").count() == 0
    finally:
        alice_context.close()
        bob_context.close()


# --- Secrets that cannot be trusted: a server that meant to be private stays closed ---------

AUTH_WITHOUT_COOKIE_SECRET = (
    '[auth]\nredirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
    'client_id = "dashboard"\nclient_secret = "s"\n'
    'server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"\n'
)


def test_a_signed_in_person_makes_an_api_token_that_a_program_then_uses(
    browser, private_server, photo_files
):
    """The pages, sign-in and the API on one server: a token made on the API page, shown
    once, works for a program and acts as its owner; revoked, it stops working."""
    import httpx

    server, _ = private_server
    context, carol = _person(browser, server.url, "carol@example.com")
    try:
        carol.get_by_test_id("stSidebarNav").get_by_role("link", name="API").click()
        carol.get_by_role("textbox", name="Name").fill("my script")
        carol.get_by_role("button", name="Make a token").click()
        carol.get_by_text("Copy it now: it is shown only this once.").wait_for()
        made = carol.get_by_test_id("stCode").filter(has_text=re.compile(r"^cls_\S{43}$"))
        secret = made.inner_text().strip()
        SCREENSHOTS.mkdir(exist_ok=True)
        carol.screenshot(path=str(SCREENSHOTS / "api-token.png"), full_page=True)

        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as program:
            photo = ("chelsea.png", photo_files["chelsea"].read_bytes())
            saved = program.post("/api/v1/predict", files={"file": photo}, data={"save": "1"})
            assert saved.status_code == 200
            assert program.get("/api/v1/predictions").json()["total"] == 1  # hers alone
            assert program.get("/_stcore/health").text == "ok"

            carol.reload()  # a new visit: the secret is not shown again
            carol.get_by_text("my script", exact=True).wait_for()
            assert secret not in carol.locator("body").inner_text()  # shown once
            carol.get_by_role("button", name="Revoke").click()
            carol.get_by_text("You have no tokens yet.").wait_for()
            assert program.get("/api/v1/predictions").status_code == 401
        # What the program saved is an ordinary row of her history.
        assert _history_rows(carol, server.url, 1) == ["chelsea.png"]
    finally:
        context.close()


@pytest.mark.parametrize(
    ("secrets", "sentence"),
    [
        ('[auth]\nredirect_uri = "x"\nclient_kwargs = { prompt = "login"\n',
         "The app's secrets file cannot be read ("),
        (AUTH_WITHOUT_COOKIE_SECRET, "but [auth] lacks cookie_secret"),
    ],
    ids=["unclosed-brace", "incomplete-auth"],
)  # fmt: skip
def test_secrets_that_cannot_be_trusted_show_and_save_no_history(
    browser, tmp_path, photo_files, lite0, secrets, sentence
):
    from classifier.history import HistoryStore
    from tests.helpers import make_record

    _require_chromium()
    database = tmp_path / "history.db"
    store = HistoryStore(f"sqlite:///{database}")
    store.add_many([make_record(file_name="someone-elses.jpg")])
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(secrets)
    with server_tools.serve(tmp_path, STREAMLIT_SECRETS_FILES=str(secrets_file)) as app:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            for path in ("history", "", "models", "teach"):
                page.goto(f"{app.url}/{path}")
                page.get_by_test_id("stSidebar").get_by_text(sentence).wait_for()
                body = page.locator("body").inner_text()
                for hidden in ("someone-elses.jpg", "tabby", "Clear history", "Sign in",
                               "Shared history", "Traceback"):  # fmt: skip
                    assert hidden not in body, (path, hidden)
            page.goto(app.url)
            _classify(page, photo_files["coffee"])
            page.wait_for_timeout(1000)  # an answer is saved right after it is drawn
            assert store.count() == 1
            page.goto(f"{app.url}/history")
            page.get_by_test_id("stMain").get_by_text(sentence).wait_for()
            assert page.get_by_test_id("stDataFrame").count() == 0
        finally:
            context.close()
            store.dispose()


# --- A fresh server whose first request is a page's own URL ----------------------------------


@pytest.mark.parametrize("path", ["history", "models", "teach", "history?prediction=AAAA"])
def test_a_fresh_servers_first_request_for_a_page_goes_through_the_app(browser, tmp_path, path):
    """Streamlit runs a `pages/` file alone for a first request that names it, unless the
    app sends it back through `streamlit_app.py`: then the settings are checked there."""
    _require_chromium()
    with server_tools.serve(tmp_path, CLASSIFIER_MAX_BYTES="abc") as app:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{app.url}/{path}")  # nothing opened `/` before on this server
            page.get_by_text("The app is misconfigured").wait_for()
            assert page.title() == "Image classifier"
            navigation = page.get_by_test_id("stSidebarNav").inner_text()
            assert "Classify" in navigation and "Teach" in navigation  # titles, not file names
            assert "Traceback" not in page.locator("body").inner_text()
        finally:
            context.close()


def test_a_fresh_servers_first_request_for_a_permalink_opens_it(browser, tmp_path, photo_files,
                                                                lite0):  # fmt: skip
    from classifier.history import HistoryStore
    from tests.helpers import make_record

    _require_chromium()
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    [row] = store.add_many([make_record(file_name="first-visit.jpg")])
    public_id = store.get(row).public_id
    store.dispose()
    with server_tools.serve(tmp_path) as app:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{app.url}/history?prediction={public_id}")
            page.get_by_text("first-visit.jpg").first.wait_for()
            assert public_id in page.get_by_test_id("stCode").inner_text()
            assert page.title() == "Image classifier"
        finally:
            context.close()


def test_a_folder_of_200_photos_runs_as_a_batch_job_with_results_and_a_csv(browser, tmp_path):
    """A picked folder becomes a job; the list follows it; its results show and download."""
    import sqlite3

    from PIL import Image
    from skimage import data

    from tests.conftest import variations

    SCREENSHOTS.mkdir(exist_ok=True)
    folder = tmp_path / "holiday"
    (folder / "day 2").mkdir(parents=True)
    pictures = variations(Image.fromarray(data.chelsea()), 100, 7)
    pictures += variations(Image.fromarray(data.coffee()), 100, 8)
    for number, picture in enumerate(pictures):
        picture.thumbnail((240, 240))
        where = folder / "day 2" if number % 2 else folder
        picture.save(where / f"{number:03d}.jpg", "JPEG", quality=85)
    (folder / "notes.txt").write_text("not a photo")
    with _own_server_page(browser, tmp_path / "server") as page:
        page.goto(page.url.rstrip("/") + "/batch")
        page.get_by_text("Pick a folder", exact=True).wait_for()
        page.locator("#folder").set_input_files(str(folder))
        page.get_by_role("button", name="Classify 200 photos").click()
        page.get_by_text("The job has started").wait_for()
        # The list refreshes by itself while the job runs, until it says it is done.
        grid = page.get_by_test_id("stDataFrame").first
        expect(grid.locator("[role='gridcell']").filter(has_text="200 of 200")).to_have_count(
            1, timeout=180_000
        )
        expect(grid.locator("[role='gridcell']").filter(has_text="Done")).to_have_count(1)
        page.screenshot(path=str(SCREENSHOTS / "batch.png"), full_page=True)

        with contextlib.closing(sqlite3.connect(tmp_path / "server" / "history.db")) as conn:
            ((public_id, total, done),) = conn.execute("SELECT public_id, total, done FROM jobs")
            (rows,) = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()
        assert (total, done, rows) == (200, 200, 200)

        page.goto(page.url.split("?")[0] + f"?job={public_id}")
        page.get_by_text("Results: holiday").wait_for()
        page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).first.wait_for()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        header, *lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
        assert header == "position,file_name,status,label,probability,error,public_id"
        assert len(lines) == 200 and all(",done," in line for line in lines)
        assert any(",holiday/day 2/001.jpg,done," in line for line in lines)
        _screenshot_of_the_whole_page(page, SCREENSHOTS / "batch-results.png")
        assert "Traceback" not in page.content()


def test_a_zipped_labelled_set_is_evaluated_by_two_models_and_a_matrix_square_shows_its_photos(
    browser, tmp_path, lite0
):
    """A zip of class folders, two models, the run on the server, a square of the confusion
    matrix clicked and the photos behind it shown."""
    import io
    import subprocess
    import sys
    import zipfile

    from PIL import Image

    from classifier import labels, models
    from tests.conftest import EXAMPLES, jpeg, variations

    SCREENSHOTS.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder, name, seed in (("n02124075", "cat", 0), ("espresso", "coffee", 1)):
            with Image.open(EXAMPLES / f"{name}.jpg") as photo:
                for i, picture in enumerate(variations(photo.convert("RGB"), 6, seed)):
                    picture.thumbnail((320, 320))
                    archive.writestr(f"Desk/{folder}/{i:02d}.jpg", jpeg(picture, 85))
    (tmp_path / "Desk.zip").write_bytes(buffer.getvalue())

    # A second model on the server: EfficientNet-Lite0's own file, added with other scaling.
    served = tmp_path / "server"
    (tmp_path / "labels.txt").write_text("\n".join(labels.labels()))
    added = subprocess.run(
        [sys.executable, "-m", "classifier", "models", "add", "Lite0 copy",
         str(models.cached_engine_path("efficientnet_lite0")), "--labels",
         str(tmp_path / "labels.txt"), "--preprocess", "minus_one_to_one"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "CLASSIFIER_DATABASE_URL": f"sqlite:///{served / 'history.db'}",
             "CLASSIFIER_DATA_DIR": str(served / "data")},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    with _own_server_page(browser, served) as page:
        page.goto(page.url.rstrip("/") + "/evaluate")
        page.get_by_text("Pick a zip", exact=True).wait_for()
        picker = page.get_by_test_id("stMultiSelect")
        picker.click()
        page.get_by_role("option", name="Lite0 copy (added)").click()
        page.keyboard.press("Escape")
        page.locator("#zip").set_input_files(str(tmp_path / "Desk.zip"))
        page.get_by_text("Desk.zip: 12 labelled photos in 2 classes.").wait_for()
        page.get_by_role("button", name="Evaluate 2 models").click()
        page.get_by_text("Side by side").wait_for(timeout=180_000)
        page.get_by_text("McNemar's exact test", exact=False).first.wait_for()

        chart = page.get_by_test_id("stVegaLiteChart").first
        chart.locator("canvas, svg").first.wait_for()
        chart.scroll_into_view_if_needed()
        # The top left square: photos labelled "espresso" (the first class), answered so.
        box = chart.locator("canvas, svg").first.bounding_box()
        squares = chart.locator(".mark-rect path")
        if squares.count():
            squares.first.click()
        else:  # drawn on a canvas: the square is near the plot's top left corner
            page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.15)
        said = page.get_by_text(re.compile(r"Labelled “espresso”, answered “[^”]+”: \d+ photos"))
        said.wait_for()
        count = int(re.search(r": (\d+) photos", said.inner_text()).group(1))
        gallery = page.locator("[class*='st-key-square_'] [data-testid='stDataFrame']")
        expect(gallery).to_be_visible()
        names = gallery.locator("[role='gridcell']").filter(has_text="Desk/espresso/")
        expect(names).to_have_count(count)
        _screenshot_of_the_whole_page(page, SCREENSHOTS / "evaluate.png")
        assert "Traceback" not in page.content()


def test_an_example_picture_is_the_button_that_classifies_it(page):
    examples = page.locator(".st-key-examples button")
    expect(examples).to_have_count(5)  # cat, coffee, rocket, flower, palace
    for width in (390, 1280):  # one row, on a phone too
        page.set_viewport_size({"width": width, "height": 900})
        tops = examples.evaluate_all("buttons => buttons.map(b => b.getBoundingClientRect().top)")
        assert len(set(tops)) == 1, (width, tops)
    cat = page.get_by_role("button", name="Cat", exact=True)
    background = cat.evaluate("button => getComputedStyle(button).backgroundImage")
    assert background.startswith('url("data:image/webp;base64,')  # the picture is the button
    assert not page.get_by_test_id("stButtonGroup").count()  # no separate row of pills
    assert not page.get_by_text("Deploy", exact=True).count()  # a visitor's toolbar

    cat.click()
    answer = page.locator("h3").filter(has_text="·").first
    expect(answer).to_have_text(re.compile(r" · \d+%$"), timeout=WAIT)
    assert any(label in answer.inner_text() for label in CAT_CLASSES)
    chart = "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
    expect(page.locator(chart).first).to_be_visible(timeout=WAIT)

    coffee = page.get_by_role("button", name="Coffee", exact=True)
    coffee.focus()
    page.keyboard.press("Enter")  # the keyboard picks an example too
    expect(answer).to_have_text(re.compile(r"^espresso · "), timeout=WAIT)


def test_one_click_on_an_open_cell_shows_the_prediction_and_ticks_still_delete(browser, server):
    SCREENSHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        # A person's own photo is saved (an example is not): the coffee example's bytes.
        page.goto(server)
        photo = (ROOT / "assets" / "examples" / "coffee.jpg").read_bytes()
        page.locator("input[type=file]").set_input_files(
            {"name": "my-morning-cup.jpg", "mimeType": "image/jpeg", "buffer": photo}
        )
        page.locator("h3").filter(has_text="espresso").wait_for()
        page.goto(f"{server}/history")
        listed = page.get_by_text("saved predictions match the filters")
        listed.wait_for()
        grid = page.locator("[data-testid='stDataFrame']").first
        cells = grid.locator("[role='gridcell']")
        expect(cells.nth(6)).to_have_text("my-morning-cup.jpg")  # the newest row, first
        link = cells.first.inner_text()
        page.wait_for_timeout(1000)  # let the thumbnails paint before the screenshot
        page.screenshot(path=str(SCREENSHOTS / "history-open-1400.png"))

        # The grid is drawn on a canvas: its first row is under the 40 px header, its
        # Open cell right of the ticks' column (the word itself is also a link, to a new tab).
        # Where the grid is is measured before each click: a notice above it moves it.
        def first_row(x: float) -> tuple[float, float]:
            box = grid.bounding_box()
            return box["x"] + x, box["y"] + 40 + 20

        open_cell, tick = 95, 16
        page.mouse.click(*first_row(open_cell))  # once
        answer = page.locator("h3").filter(has_text="·").first
        expect(answer).to_have_text(re.compile(r"^espresso · \d+%$"), timeout=WAIT)
        assert page.url == f"{server}/history{link}"  # the link's own address, in this tab
        assert len(context.pages) == 1
        page.get_by_text("my-morning-cup.jpg").wait_for()

        # Back in the list, ticks still select rows to delete, and the Open cell opens again.
        page.get_by_role("button", name="All predictions").click()
        listed.wait_for()
        expect(cells.nth(6)).to_have_text("my-morning-cup.jpg")
        page.mouse.click(*first_row(tick))
        page.get_by_role("button", name="Delete 1 selected").click()
        deleted = page.get_by_text("Deleted 1 prediction.")
        deleted.wait_for()
        assert "prediction=" not in page.url
        expect(cells.nth(6)).not_to_have_text("my-morning-cup.jpg")  # the ticked row went
        page.get_by_role("button", name="Undo").click()
        page.get_by_text("Restored 1 prediction.").wait_for()
        expect(cells.nth(6)).to_have_text("my-morning-cup.jpg")
        expect(deleted).to_have_count(0)  # the notice above the grid is gone: it moved up
        _wait_until_the_page_is_drawn(page)  # the grid under the pointer is the new one
        page.mouse.click(*first_row(open_cell))
        expect(answer).to_have_text(re.compile(r"^espresso · "), timeout=WAIT)
        assert page.url == f"{server}/history{link}"  # the row came back with its link

        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.go_back()
        listed.wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(SCREENSHOTS / "history-open-390.png"), full_page=True)
        assert "Traceback" not in page.content()
    finally:
        context.close()
