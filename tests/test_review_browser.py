"""The Review page in a real browser: five saved photos reviewed with the mouse, and a model
taught from the corrections.

The server and Chromium are started as in tests/test_browser.py (its `browser` fixture and
its helpers); the history is filled through the real store before the server starts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from benchmarks import server as server_tools
from classifier import images
from classifier.history import HistoryStore, NewRecord
from classifier.labels import TopClass
from tests.conftest import EXAMPLES, variations
from tests.test_browser import (
    SCREENSHOTS,
    WAIT,
    _open_the_options,
    _require_chromium,
    _screenshot_of_the_whole_page,
    _wait_until_the_page_is_drawn,
    browser,  # noqa: F401  (a fixture: one Chromium for the module)
)

pytestmark = pytest.mark.browser

# Five photos, the least sure first: (file, the example it is made from, top classes).
PHOTOS = (
    ("cat-1.jpg", "cat", (("tabby cat", 0.21), ("tiger cat", 0.20), ("lynx", 0.15))),
    ("coffee-1.jpg", "coffee", (("espresso", 0.22), ("cup", 0.17), ("eggnog", 0.1))),
    ("rocket-1.jpg", "rocket", (("missile", 0.2), ("projectile", 0.1), ("space shuttle", 0.05))),
    ("cat-2.jpg", "cat", (("Egyptian Mau", 0.2), ("tabby cat", 0.05), ("lynx", 0.03))),
    ("coffee-2.jpg", "coffee", (("cup", 0.24), ("espresso", 0.02), ("eggnog", 0.01))),
)


# Photos corrected on an earlier visit, out of the queue: (file, example, top classes,
# the class given). Their reduced copies were kept to teach from.
CORRECTED_BEFORE = (
    ("cat-0.jpg", "cat", (("lynx", 0.9), ("tabby cat", 0.05)), "tabby cat"),
    ("coffee-0.jpg", "coffee", (("cup", 0.9), ("espresso", 0.05)), "flat white"),
)


def saved_photos(database: Path, corrected_before: tuple = ()) -> None:
    """Save the five photos' answers, with thumbnails, as the Classify page would; and
    those corrected before, with the photo kept to teach from, and their corrections."""
    store = HistoryStore(f"sqlite:///{database}")
    try:
        for number, (file_name, example, classes) in enumerate(PHOTOS):
            _save(store, file_name, example, classes, seed=number)
        for number, (file_name, example, classes, given) in enumerate(corrected_before):
            row = _save(store, file_name, example, classes, seed=100 + number, keep_photo=True)
            store.set_feedback(row, "wrong", given)
    finally:
        store.dispose()


def _save(
    store: HistoryStore,
    file_name: str,
    example: str,
    classes: tuple,
    seed: int,
    keep_photo: bool = False,
) -> int:
    """Save one answer about a variation of an example photo; return its row id."""
    with Image.open(EXAMPLES / f"{example}.jpg") as original:
        [picture] = variations(original.convert("RGB"), 1, seed=seed)
    return store.add(
        NewRecord(
            file_name=file_name,
            sha256=hashlib.sha256(file_name.encode()).hexdigest(),
            width=picture.width,
            height=picture.height,
            image_format="JPEG",
            model="efficientnet_lite0",
            top_k=tuple(TopClass(label, i, p) for i, (label, p) in enumerate(classes)),
            inference_ms=5.0,
            thumbnail=images.make_thumbnail(picture),
            photo=images.reduced_copy(picture) if keep_photo else None,
        )
    )


@pytest.fixture(scope="module")
def review_server(tmp_path_factory, lite0) -> Iterator[str]:
    """The app as a person runs it, with five unsure answers saved."""
    _require_chromium()
    folder = tmp_path_factory.mktemp("review")
    saved_photos(folder / "history.db")
    with server_tools.serve(folder) as running:
        yield running.url


def review_page(browser, url: str, width: int = 1280, scheme: str = "light"):  # noqa: F811
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, device_scale_factor=1
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{url}/review")
    return context, page


def shown(page, file_name: str, left: str) -> None:
    """Wait until the page shows this photo and this many left."""
    expect(page.get_by_text(left, exact=True)).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text=file_name)).to_be_visible(
        timeout=WAIT
    )
    _wait_until_the_page_is_drawn(page)


def test_the_buttons_answer_their_keys(browser, review_server):  # noqa: F811
    context, page = review_page(browser, review_server)
    try:
        shown(page, "cat-1.jpg", "5 left")
        page.get_by_role("heading", name="Review").click()  # the page has the keyboard
        skipped = page.get_by_text(re.compile(r"^4 left · 1 skipped on this visit$"))
        for _ in range(5):  # the buttons listen for their keys a moment after they show
            page.keyboard.press("3")  # Skip
            try:
                expect(skipped).to_be_visible(timeout=3_000)
                break
            except AssertionError:
                continue
        shown(page, "coffee-1.jpg", "4 left · 1 skipped on this visit")
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("device", "width"), [("desktop", 1280), ("phone", 390)])
def test_the_review_page_in_both_themes_fits_a_phone(
    browser,  # noqa: F811
    review_server,
    scheme,
    device,
    width,
):
    context, page = review_page(browser, review_server, width, scheme)
    try:
        shown(page, "cat-1.jpg", "5 left")  # the tests before saved nothing
        background = page.evaluate(
            "getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"
        )
        red, green, blue = (int(part) for part in background[4:-1].split(","))
        assert (red + green + blue > 600) == (scheme == "light"), background
        for name in ("Right", "Correct it", "Skip", "Not a usable photo"):
            button = page.get_by_role("button", name=name)
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, name
        overflow = page.evaluate(
            "document.querySelector('[data-testid=stMain]').scrollWidth"
            " - document.querySelector('[data-testid=stMain]').clientWidth"
        )
        assert overflow <= 0  # nothing runs off the side of the screen
        page.wait_for_timeout(800)  # the chart's entry transition
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"review-{scheme}-{device}.png"), full_page=True)
    finally:
        context.close()


def test_review_five_photos_with_the_mouse_and_find_the_corrections_in_history(
    browser,  # noqa: F811
    review_server,
):
    context, page = review_page(browser, review_server)
    try:
        shown(page, "cat-1.jpg", "5 left")
        expect(page.get_by_text("Below 25% sure: its best guess is 21%.")).to_be_visible()
        expect(page.get_by_test_id("stImage").first).to_be_visible()
        page.get_by_role("button", name="Right").click()
        expect(page.get_by_text("cat-1.jpg: Saved: right.")).to_be_visible(timeout=WAIT)

        shown(page, "coffee-1.jpg", "4 left")
        page.get_by_role("button", name="Skip").click()

        shown(page, "rocket-1.jpg", "3 left · 1 skipped on this visit")
        page.get_by_role("button", name="Correct it").click()
        box = page.locator("[class*='st-key-correction_'] input")
        box.wait_for()
        _wait_until_the_page_is_drawn(page)
        options = _open_the_options(page, box)
        box.fill("space shut")
        options.filter(has_text="space shuttle").first.click()  # picked among the classes
        expect(page.get_by_text("rocket-1.jpg: Saved: wrong, it is space shuttle.")).to_be_visible(
            timeout=WAIT
        )

        shown(page, "cat-2.jpg", "2 left · 1 skipped on this visit")
        page.get_by_role("button", name="Correct it").click()
        box = page.locator("[class*='st-key-correction_'] input")
        box.wait_for()
        _wait_until_the_page_is_drawn(page)
        box.fill("our neighbour's cat")  # typed: a name of their own
        box.press("Enter")
        expect(
            page.get_by_text("cat-2.jpg: Saved: wrong, it is “our neighbour's cat”")
        ).to_be_visible(timeout=WAIT)

        shown(page, "coffee-2.jpg", "1 left · 1 skipped on this visit")
        page.get_by_role("button", name="Not a usable photo").click()
        expect(page.get_by_text("coffee-2.jpg: Saved: not a usable photo.")).to_be_visible(
            timeout=WAIT
        )
        expect(
            page.get_by_text("Nothing to review: you skipped the last 1 on this visit.")
        ).to_be_visible(timeout=WAIT)
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "review-done.png"), full_page=True)
        page.get_by_role("button", name="Review the skipped ones").click()
        shown(page, "coffee-1.jpg", "1 left")
        assert "Traceback" not in page.content()

        page.goto(f"{review_server}/history")
        page.get_by_text("5 of 5 saved predictions match the filters.").wait_for()
        label = page.get_by_label("Label contains")  # searches the corrected labels too
        label.fill("space shuttle")
        label.press("Enter")
        page.get_by_text("1 of 5 saved predictions match the filters.").wait_for()
        label.fill("neighbour")
        label.press("Enter")
        page.get_by_text("1 of 5 saved predictions match the filters.").wait_for()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV (1)").click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        [row] = csv.DictReader(io.StringIO(text))
        assert (row["file_name"], row["feedback"], row["corrected_label"]) == (
            "cat-2.jpg",
            "wrong",
            "our neighbour's cat",
        )
    finally:
        context.close()


@pytest.fixture(scope="module")
def teach_server(tmp_path_factory, lite0) -> Iterator[str]:
    """The app with the five unsure answers, and two photos corrected on an earlier visit."""
    _require_chromium()
    folder = tmp_path_factory.mktemp("review-teach")
    saved_photos(folder / "history.db", CORRECTED_BEFORE)
    with server_tools.serve(folder) as running:
        yield running.url


def test_review_correct_and_teach_a_model_from_the_corrections(browser, teach_server):  # noqa: F811
    context, page = review_page(browser, teach_server)
    try:
        shown(page, "cat-1.jpg", "5 left")  # those corrected before are not in the queue
        page.get_by_role("button", name="Right").click()  # "tabby cat", a class corrected to
        expect(page.get_by_text("cat-1.jpg: Saved: right.")).to_be_visible(timeout=WAIT)

        shown(page, "coffee-1.jpg", "4 left")
        page.get_by_role("button", name="Correct it").click()
        box = page.locator("[class*='st-key-correction_'] input")
        box.wait_for()
        _wait_until_the_page_is_drawn(page)
        box.fill("flat white")  # typed: a name of their own, as on the earlier visit
        box.press("Enter")
        expect(page.get_by_text("coffee-1.jpg: Saved: wrong, it is “flat white”")).to_be_visible(
            timeout=WAIT
        )

        shown(page, "rocket-1.jpg", "3 left")
        page.get_by_role("button", name="Skip").click()

        shown(page, "cat-2.jpg", "2 left · 1 skipped on this visit")
        page.get_by_role("button", name="Correct it").click()
        box = page.locator("[class*='st-key-correction_'] input")
        box.wait_for()
        _wait_until_the_page_is_drawn(page)
        options = _open_the_options(page, box)
        box.fill("tabby")
        options.filter(has_text="tabby cat").first.click()  # picked among the classes
        expect(page.get_by_text("cat-2.jpg: Saved: wrong, it is tabby cat.")).to_be_visible(
            timeout=WAIT
        )

        shown(page, "coffee-2.jpg", "1 left · 1 skipped on this visit")
        page.get_by_role("button", name="Not a usable photo").click()
        expect(
            page.get_by_text("Nothing to review: you skipped the last 1 on this visit.")
        ).to_be_visible(timeout=WAIT)
        _wait_until_the_page_is_drawn(page)

        page.get_by_role("button", name="Teach a model from these").click()
        title = page.get_by_role("heading", name="Teach a model your own classes")
        expect(title).to_be_visible(timeout=WAIT)
        _wait_until_the_page_is_drawn(page)
        # One class per corrected label, the most photos first: "tabby cat" holds the photo
        # corrected before, the one picked here and the one rated right; "flat white" the
        # one corrected before and the one typed here. The skipped, the unusable and the
        # rocket nobody corrected are not taught.
        names = page.get_by_label("Class name")
        expect(names).to_have_count(2, timeout=WAIT)
        expect(names.nth(0)).to_have_value("tabby cat")
        expect(names.nth(1)).to_have_value("flat white")
        expect(page.get_by_text("3 photos", exact=True)).to_have_count(1)
        expect(page.get_by_text("2 photos", exact=True)).to_have_count(1)
        expect(
            page.get_by_text(
                "From 4 corrected predictions and 1 rated right (3 with only a thumbnail, "
                "which is small"
            )
        ).to_be_visible()

        page.get_by_role("button", name="Train").click()
        metric = page.get_by_test_id("stMetric").filter(has_text="Cross-validated accuracy")
        # The first training on a server may export the feature extractor in a child process.
        expect(metric.get_by_test_id("stMetricValue")).to_have_text(
            re.compile(r"^\d+%$"), timeout=300_000
        )
        cells = page.get_by_test_id("stDataFrame").first.locator("[role='gridcell']")
        for name in ("tabby cat", "flat white"):  # the grid fills in after the metric
            expect(cells.filter(has_text=re.compile(f"^{name}$"))).to_have_count(1, timeout=WAIT)
        chart = page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).first
        expect(chart).to_be_visible(timeout=WAIT)  # the confusion matrix

        model_name = page.get_by_label("Model name")
        model_name.fill("Cat or coffee")
        model_name.press("Enter")
        save = page.get_by_role("button", name="Save model")
        expect(save).to_be_enabled(timeout=WAIT)
        save.click()
        expect(
            page.get_by_text("Saved Cat or coffee. It is now the model picked on the Classify page")
        ).to_be_visible(timeout=WAIT)
        expect(page.get_by_text("Saved as Cat or coffee.")).to_be_visible(timeout=WAIT)
        assert "Traceback" not in page.content()
        page.wait_for_timeout(800)  # the chart's entry transition
        SCREENSHOTS.mkdir(exist_ok=True)
        _screenshot_of_the_whole_page(page, SCREENSHOTS / "teach-from-review.png")

        page.get_by_role("link", name="Classify a photo with it").click()
        page.get_by_text("What's in this photo?").wait_for()
        picker = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Model")
        expect(picker).to_have_value("Cat or coffee (taught)", timeout=WAIT)
        page.get_by_role("button", name="Coffee", exact=True).click()  # an example picture
        answer = page.locator("h3").filter(has_text="·").first
        expect(answer).to_have_text(re.compile(r"^flat white · \d+%$"), timeout=WAIT)
        assert "Traceback" not in page.content()
    finally:
        context.close()
