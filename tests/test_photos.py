"""Photos kept to teach from: a reduced copy of each saved photo, beside its thumbnail.

The copy itself (`images.reduced_copy`, `images.photo_copy`), how the history keeps it
(a `photos` table: saved with the row, read on its own, flagged on every row and export,
deleted and put back with the row, its owner's), the Classify page's toggle and its
setting, and the API's `photo` field. The upgrade of an older history is in
test_history_tables_and_migrations.py.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa
import streamlit as st
from PIL import ExifTags, Image
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from classifier import images
from classifier.history import HistoryStore, owners, tables
from classifier.history.owners import Scope
from tests.helpers import app_test, make_record
from tests.test_private import ALICE, BOB, open_app, owner_of

SIDE = images.PHOTO_MIN_SIDE  # EfficientNet-Lite0 sees 224 x 224: 320 is more than it needs


def camera_jpeg(width: int, height: int, orientation: int = 1) -> bytes:
    """A JPEG as a phone writes it: stored `width` x `height`, red on the left half and blue
    on the right, with an EXIF orientation, the camera's make, a time and a place."""
    stored = np.zeros((height, width, 3), np.uint8)
    stored[:, : width // 2] = (220, 30, 30)
    stored[:, width // 2 :] = (30, 30, 220)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "Phone maker"
    exif[ExifTags.Base.DateTime] = "2024:05:06 07:08:09"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def opened(data: bytes) -> Image.Image:
    """Open a kept copy, checking that it is a JPEG that says nothing of where it came from."""
    picture = Image.open(io.BytesIO(data))
    picture.load()
    assert picture.format == "JPEG"
    assert not dict(picture.getexif())
    assert not {"exif", "icc_profile", "xmp"} & set(picture.info)
    return picture


def colour(picture: Image.Image, x: float, y: float) -> tuple[int, ...]:
    """The colour at a point given as fractions of the width and height."""
    return picture.getpixel((int(x * (picture.width - 1)), int(y * (picture.height - 1))))


def near(found: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return max(abs(a - b) for a, b in zip(found, expected, strict=True)) <= 12


RED, BLUE = (220, 30, 30), (30, 30, 220)


# --- The copy ----------------------------------------------------------------------------


def test_a_large_photo_is_kept_with_its_shorter_side_at_the_size_asked(coffee_jpeg) -> None:
    picture = images.decode_image(coffee_jpeg).image  # 600 x 400

    kept = opened(images.reduced_copy(picture, SIDE))

    assert kept.size == (480, 320)
    expected = np.asarray(picture.resize((480, 320), Image.Resampling.LANCZOS), np.float32)
    assert np.abs(np.asarray(kept, np.float32) - expected).mean() < 2.5  # JPEG quality 90


def test_a_photo_smaller_than_asked_keeps_its_own_size() -> None:
    for size in ((300, 451), (451, 300), (320, 320)):
        assert opened(images.reduced_copy(Image.new("RGB", size, "olive"), SIDE)).size == size


def test_a_tall_photo_is_reduced_by_its_width() -> None:
    kept = opened(images.reduced_copy(Image.new("RGB", (1000, 3000), "navy"), 400))
    assert kept.size == (400, 1200)


def test_the_copy_stands_as_the_photo_was_taken_and_says_nothing_of_the_camera() -> None:
    data = camera_jpeg(1600, 1200, orientation=6)  # turned a quarter to the right to be seen
    decoded = images.decode_image(data, min_side=SIDE)
    assert Image.open(io.BytesIO(data)).getexif()[ExifTags.Base.Make] == "Phone maker"

    kept = opened(images.reduced_copy(decoded.image, SIDE))

    assert kept.size == (320, 427)  # upright: 1200 x 1600 as seen
    assert near(colour(kept, 0.5, 0.1), RED)  # the stored left half is on top
    assert near(colour(kept, 0.5, 0.9), BLUE)


def test_a_copy_is_made_from_the_picture_at_hand_when_it_is_large_enough() -> None:
    at_hand = Image.new("RGB", (640, 480), "teal")

    # No bytes to decode again: the picture at hand is used.
    assert opened(images.photo_copy(b"", at_hand, (4000, 3000), SIDE)).size == (427, 320)
    assert opened(images.photo_copy(b"", at_hand, (640, 480), 1000)).size == (640, 480)


def test_a_copy_is_decoded_again_when_the_picture_at_hand_is_too_small() -> None:
    data = camera_jpeg(3000, 500)  # a panorama: shown at 640 x 107, far below 320
    shown = images.decode_image(data, min_side=256).image
    shown.thumbnail((640, 640))

    kept = opened(images.photo_copy(data, shown, (3000, 500), SIDE))

    assert kept.size == (1920, 320)
    assert near(colour(kept, 0.1, 0.5), RED) and near(colour(kept, 0.9, 0.5), BLUE)


def test_the_side_kept_is_320_or_what_the_models_crop_needs() -> None:
    assert images.photo_side(224) == 320  # a 224 crop needs 256
    assert images.photo_side(384) == 439  # 384 / 0.875, rounded up
    assert images.photo_side(320, crop_fraction=1.0) == 320
    assert images.photo_side(512, crop_fraction=1.0) == 512
    with pytest.raises(ValueError, match="min_side >= 1"):
        images.reduced_copy(Image.new("RGB", (10, 10)), 0)


# --- The history -------------------------------------------------------------------------

PHOTO = b"\xff\xd8 a photo to teach from"


def photo_rows(raw: sa.Engine) -> int:
    with raw.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(tables.photos)).scalar_one()


def test_a_photo_is_kept_beside_the_thumbnail_and_read_on_its_own(store: HistoryStore) -> None:
    kept = store.add(make_record(file_name="kept.jpg", thumbnail=b"T", photo=PHOTO))
    alone = store.add(make_record(file_name="thumbnail only.jpg", thumbnail=b"T"))

    assert store.photo(kept) == PHOTO
    assert store.photo(alone) is None
    assert store.photo(123456) is None
    assert store.photos([kept, alone, 123456]) == {kept: PHOTO}
    assert store.photos([]) == {}
    record = store.get(kept)
    assert (record.has_photo, record.photo, record.thumbnail) == (True, None, b"T")
    assert store.get(alone).has_photo is False
    assert store.get_public(record.public_id).has_photo is True
    flags = {r.file_name: r.has_photo for r in store.find(with_thumbnails=False)}
    assert flags == {"kept.jpg": True, "thumbnail only.jpg": False}
    assert [r.has_photo for r in store.find(sort="oldest")] == [True, False]


def test_a_delete_takes_the_photo_and_undoing_it_brings_it_back(
    store: HistoryStore, raw: sa.Engine
) -> None:
    kept = store.add(make_record(thumbnail=b"T", photo=PHOTO))
    other = store.add(make_record(photo=b"\xff\xd8 another"))
    before = store.get(kept)

    removed = store.remove([kept])
    assert store.photo(kept) is None and photo_rows(raw) == 1
    assert removed.records[0].photo == PHOTO

    assert store.restore(removed) == 1
    assert store.get(kept) == before
    assert store.photo(kept) == PHOTO

    assert store.delete([kept]) == 1
    assert photo_rows(raw) == 1  # the other row's
    assert store.clear() == 1
    assert photo_rows(raw) == 0
    assert store.photo(other) is None


def test_exports_say_which_rows_keep_a_photo(store: HistoryStore) -> None:
    store.add(
        make_record(file_name="kept.jpg", photo=PHOTO, created_at=datetime(2024, 1, 1, tzinfo=UTC))
    )
    store.add(make_record(file_name="alone.jpg", created_at=datetime(2024, 1, 2, tzinfo=UTC)))

    rows = json.loads(store.export_json(sort="oldest"))
    csv_rows = list(csv.DictReader(io.StringIO(store.export_csv(sort="oldest").decode())))

    assert [(r["file_name"], r["has_photo"]) for r in rows] == [
        ("kept.jpg", True),
        ("alone.jpg", False),
    ]
    assert [(r["file_name"], r["has_photo"]) for r in csv_rows] == [
        ("kept.jpg", "True"),
        ("alone.jpg", "False"),
    ]
    assert PHOTO not in store.export_csv() + store.export_json()


def test_a_photo_is_its_owners_like_its_thumbnail(store: HistoryStore, raw: sa.Engine) -> None:
    alice = store.scoped(Scope.own("alice"))
    bob = store.scoped(Scope.own("bob"))
    hers = alice.add(make_record(thumbnail=b"T", photo=PHOTO))

    assert alice.photo(hers) == PHOTO
    assert bob.photo(hers) is None
    assert bob.photos([hers]) == {}
    assert store.photo(hers) == PHOTO  # a shared history, an admin, the command line's --all
    assert len(bob.remove([hers])) == 0
    assert bob.delete([hers]) == 0
    assert photo_rows(raw) == 1

    removed = alice.remove([hers])
    assert photo_rows(raw) == 0
    alice.restore(removed)
    assert alice.photo(hers) == PHOTO
    assert alice.get(hers).owner == "alice"


# --- The Classify page --------------------------------------------------------------------


@pytest.fixture
def history(tmp_path, monkeypatch, lite0) -> HistoryStore:
    """The app's history, of this test's own."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    st.cache_data.clear()
    store = HistoryStore(url)
    yield store
    store.dispose()
    st.cache_data.clear()


def classify_page(at: AppTest | None = None) -> AppTest:
    at = (at or app_test(300)).run()
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    return at


def upload(at: AppTest, *files: tuple[str, bytes, str]) -> AppTest:
    return at.file_uploader(key="uploads").set_value(list(files)).run()


def test_keeping_photos_is_off_by_default_and_keeps_the_thumbnail_alone(history, coffee_jpeg):
    at = classify_page()
    toggle = at.sidebar.toggle(key="save_photos")
    assert (toggle.label, toggle.value, toggle.disabled) == (
        "Keep photos to teach from",
        False,
        False,
    )

    upload(at, ("coffee.jpg", coffee_jpeg, "image/jpeg"))

    [saved] = history.find(limit=None)
    assert saved.thumbnail is not None
    assert saved.has_photo is False
    assert history.photo(saved.id) is None


def test_a_saved_photo_keeps_a_copy_large_enough_to_teach_from(history, chelsea_png):
    at = classify_page()
    at.sidebar.toggle(key="save_photos").set_value(True).run()

    upload(
        at,
        ("phone.jpg", camera_jpeg(1600, 1200, orientation=6), "image/jpeg"),  # 1200 x 1600 seen
        ("panorama.jpg", camera_jpeg(3000, 500), "image/jpeg"),  # shown far below 320 px high
        ("chelsea.png", chelsea_png, "image/png"),  # 451 x 300: smaller than 320 already
    )

    saved = {r.file_name: r for r in history.find(limit=None)}
    assert all(r.has_photo and r.thumbnail is not None for r in saved.values())
    phone = opened(history.photo(saved["phone.jpg"].id))
    assert phone.size == (320, 427)
    assert near(colour(phone, 0.5, 0.1), RED) and near(colour(phone, 0.5, 0.9), BLUE)
    assert opened(history.photo(saved["panorama.jpg"].id)).size == (1920, 320)
    assert opened(history.photo(saved["chelsea.png"].id)).size == (451, 300)
    assert not at.exception


def test_the_setting_turns_keeping_photos_on_by_default(history, coffee_jpeg, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_KEEP_PHOTOS", "1")
    at = classify_page()
    assert at.sidebar.toggle(key="save_photos").value is True

    upload(at, ("coffee.jpg", coffee_jpeg, "image/jpeg"))

    [saved] = history.find(limit=None)
    assert opened(history.photo(saved.id)).size == (480, 320)  # 600 x 400


def test_no_photo_is_kept_without_thumbnails(history, coffee_jpeg, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_KEEP_PHOTOS", "on")
    at = classify_page()
    at.sidebar.toggle(key="save_thumbnails").set_value(False).run()
    assert at.sidebar.toggle(key="save_photos").disabled

    upload(at, ("coffee.jpg", coffee_jpeg, "image/jpeg"))

    [saved] = history.find(limit=None)
    assert (saved.thumbnail, saved.has_photo) == (None, False)


def test_the_toggle_is_the_classify_pages_alone(history):
    at = classify_page()
    at.switch_page("pages/batch.py").run()
    assert "save_photos" not in [t.key for t in at.sidebar.toggle]
    assert "save" in [t.key for t in at.sidebar.toggle]


def test_a_mistyped_setting_is_said_by_name(history, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_KEEP_PHOTOS", "maybe")
    at = app_test(120).run()
    said = "\n".join(e.value for e in at.error)
    assert "CLASSIFIER_KEEP_PHOTOS" in said and "maybe" in said
    assert not at.exception


def test_a_signed_in_persons_photo_is_theirs(history, coffee_jpeg):
    at = classify_page(open_app(signed_in=ALICE))
    at.sidebar.toggle(key="save_photos").set_value(True).run()

    upload(at, ("coffee.jpg", coffee_jpeg, "image/jpeg"))

    [saved] = history.find(limit=None)
    assert saved.owner == owner_of(ALICE)
    assert history.scoped(Scope.own(owner_of(ALICE))).photo(saved.id) is not None
    assert history.scoped(Scope.own(owner_of(BOB))).photo(saved.id) is None
    assert owners.find_owner(history, "alice@example.com") == owner_of(ALICE)


# --- The API ------------------------------------------------------------------------------


@pytest.fixture
def api(history) -> TestClient:
    """The app's API routes, called in this process (a shared history: no sign-in here)."""
    from api import server

    with TestClient(Starlette(routes=server.routes())) as client:
        yield client


@pytest.mark.parametrize(
    ("setting", "sent", "kept"),
    [("0", None, False), ("1", None, True), ("1", "false", False), ("0", "true", True)],
)
def test_the_api_keeps_a_photo_when_asked_or_by_the_setting(
    api, history, coffee_jpeg, monkeypatch, setting, sent, kept
):
    monkeypatch.setenv("CLASSIFIER_KEEP_PHOTOS", setting)
    fields = {"model": "efficientnet_lite0", "save": "true"}
    if sent is not None:
        fields["photo"] = sent

    response = api.post(
        "/api/v1/predict", files=[("file", ("coffee.jpg", coffee_jpeg))], data=fields
    )

    assert response.status_code == 200, response.text
    [answer] = response.json()["predictions"]
    [saved] = history.find(limit=None)
    assert (saved.public_id, saved.source, saved.has_photo) == (answer["id"], "api", kept)
    if kept:
        assert opened(history.photo(saved.id)).size == (480, 320)
    exported = api.get("/api/v1/predictions/export", params={"format": "json"}).json()
    assert [row["has_photo"] for row in exported] == [kept]


def test_the_api_refuses_a_photo_field_that_is_not_true_or_false(api, history, coffee_jpeg):
    fields = {"model": "efficientnet_lite0", "save": "true", "photo": "please"}

    response = api.post(
        "/api/v1/predict", files=[("file", ("coffee.jpg", coffee_jpeg))], data=fields
    )

    assert response.status_code == 422
    assert response.json()["error"] == "Expected photo to be true or false."
    assert history.count() == 0


def test_the_history_table_says_which_rows_keep_a_photo(history, coffee_jpeg, chelsea_png):
    at = classify_page()
    upload(at, ("without.jpg", coffee_jpeg, "image/jpeg"))
    at.sidebar.toggle(key="save_photos").set_value(True).run()
    upload(at, ("with.png", chelsea_png, "image/png"))

    at.switch_page("pages/history.py").run()

    table = at.dataframe[0].value
    kept = dict(zip(table["file"], table["photo"], strict=True))
    assert kept == {"with.png": "yes", "without.jpg": ""}
    assert not at.exception
