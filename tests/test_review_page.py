"""The Review page: the queue of predictions worth a second look, and its actions.

The queue itself is tested on SQLite and PostgreSQL (`classifier.history.review`); the page
with AppTest, its rows made through the real store.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from PIL import Image
from streamlit.navigation.page import calc_hash
from streamlit.testing.v1 import AppTest

from classifier import images
from classifier.history import Filters, HistoryStore, NewRecord
from classifier.history.owners import Scope
from classifier.history.review import margin, queue
from classifier.labels import TopClass
from tests.helpers import app_test
from tests.test_private import ALICE, BOB, open_app, owner_of
from ui import pictures

NOW = datetime.now(UTC).replace(microsecond=0)
THUMBNAIL = images.make_thumbnail(Image.new("RGB", (64, 48), (200, 120, 40)))


def answer(*classes: tuple[str, float], **extra) -> NewRecord:
    """A saved answer whose top classes are `classes` (label, probability), best first."""
    file_name = extra.pop("file_name")
    return NewRecord(
        file_name=file_name,
        sha256=extra.pop("sha256", hashlib.sha256(file_name.encode()).hexdigest()),
        width=640,
        height=480,
        image_format="JPEG",
        model=extra.pop("model", "efficientnet_lite0"),
        top_k=tuple(TopClass(label, i, p) for i, (label, p) in enumerate(classes)),
        inference_ms=4.2,
        thumbnail=extra.pop("thumbnail", THUMBNAIL),
        created_at=extra.pop("created_at", NOW),
        **extra,
    )


TWICE = hashlib.sha256(b"the same photo").hexdigest()
AGREED = hashlib.sha256(b"another photo").hexdigest()


def add_queue_rows(store: HistoryStore) -> dict[str, int]:
    """Add answers in and out of the queue (threshold 25%); return their ids by file name.

    In it, least sure first: close.jpg (top two 1 point apart), unsure.jpg (15), twice-a.jpg
    and twice-b.jpg (30 and 50: two models answered the same photo differently) and
    wrong.jpg (85, rated wrong). Out of it: a sure answer, an unsure one rated right, an
    unsure one corrected, and two models that agree.
    """
    rows = {
        "sure.jpg": answer(("tabby cat", 0.95), ("tiger cat", 0.03), file_name="sure.jpg"),
        "wrong.jpg": answer(
            ("tabby cat", 0.9),
            ("tiger cat", 0.05),
            file_name="wrong.jpg",
            created_at=NOW - timedelta(days=3),
        ),
        "unsure.jpg": answer(
            ("espresso", 0.2),
            ("cup", 0.05),
            file_name="unsure.jpg",
            model="mobilenet_v2",
            created_at=NOW - timedelta(days=2),
        ),
        "close.jpg": answer(
            ("tabby cat", 0.22), ("tiger cat", 0.21), ("lynx", 0.2), file_name="close.jpg"
        ),
        "right.jpg": answer(("lynx", 0.1), ("tabby cat", 0.09), file_name="right.jpg"),
        "fixed.jpg": answer(("lynx", 0.1), ("tabby cat", 0.09), file_name="fixed.jpg"),
        "twice-a.jpg": answer(
            ("tabby cat", 0.6),
            ("tiger cat", 0.3),
            file_name="twice-a.jpg",
            sha256=TWICE,
            model="mobilenet_v2",
        ),
        "twice-b.jpg": answer(
            ("tiger cat", 0.7), ("tabby cat", 0.2), file_name="twice-b.jpg", sha256=TWICE
        ),
        "agree-a.jpg": answer(
            ("espresso", 0.8),
            ("cup", 0.1),
            file_name="agree-a.jpg",
            sha256=AGREED,
            model="mobilenet_v2",
        ),
        "agree-b.jpg": answer(
            ("espresso", 0.9), ("cup", 0.05), file_name="agree-b.jpg", sha256=AGREED
        ),
    }
    ids = dict(zip(rows, store.add_many(rows.values()), strict=True))
    assert store.set_feedback(ids["wrong.jpg"], "wrong")
    assert store.set_feedback(ids["right.jpg"], "correct")
    assert store.set_feedback(ids["fixed.jpg"], "wrong", "tabby cat")
    return ids


IN_ORDER = ["close.jpg", "unsure.jpg", "twice-a.jpg", "twice-b.jpg", "wrong.jpg"]


def file_names(found) -> list[str]:
    return [entry.file_name for entry in found.entries]


# --- The queue ----------------------------------------------------------------------------


def test_the_queue_holds_what_is_worth_a_look_least_sure_first(store):
    ids = add_queue_rows(store)

    found = queue(store, unsure_below=0.25)

    assert file_names(found) == IN_ORDER
    by_name = {entry.file_name: entry for entry in found.entries}
    assert [round(by_name[name].margin, 6) for name in IN_ORDER] == [0.01, 0.15, 0.3, 0.5, 0.85]
    assert by_name["close.jpg"].unsure and not by_name["close.jpg"].disagreed
    assert by_name["wrong.jpg"].rated_wrong and not by_name["wrong.jpg"].unsure
    assert by_name["twice-a.jpg"].others == (("efficientnet_lite0", "tiger cat"),)
    assert by_name["twice-b.jpg"].others == (("mobilenet_v2", "tabby cat"),)
    assert by_name["close.jpg"].id == ids["close.jpg"]


def test_the_threshold_and_the_filters_narrow_the_queue(store):
    add_queue_rows(store)

    assert "sure.jpg" not in file_names(queue(store, unsure_below=0.95))
    assert file_names(queue(store, unsure_below=0.96))[-1] == "sure.jpg"  # 92 points apart
    assert file_names(queue(store, unsure_below=0.1)) == ["twice-a.jpg", "twice-b.jpg",
                                                          "wrong.jpg"]  # fmt: skip
    mobilenet = queue(store, Filters(models=("mobilenet_v2",)), 0.25)
    assert file_names(mobilenet) == ["unsure.jpg", "twice-a.jpg"]  # its partner is still known
    assert mobilenet.entries[1].others == (("efficientnet_lite0", "tiger cat"),)
    days = queue(store, Filters(start=NOW - timedelta(days=3), end=NOW - timedelta(days=1)), 0.25)
    assert file_names(days) == ["unsure.jpg", "wrong.jpg"]
    whole = queue(store, unsure_below=0.25)
    assert whole.labels() == [("tabby cat", 3), ("espresso", 1), ("tiger cat", 1)]
    assert file_names(whole.of_label("tabby cat")) == ["close.jpg", "twice-a.jpg", "wrong.jpg"]


def test_the_queue_keeps_to_the_stores_owner_also_for_disagreements(store):
    alice = store.scoped(Scope.own("issuer alice"))
    bob = store.scoped(Scope.own("issuer bob"))
    alice.add(answer(("tabby cat", 0.9), ("lynx", 0.05), file_name="hers.jpg", sha256=TWICE))
    bob.add(answer(("espresso", 0.9), ("cup", 0.05), file_name="his.jpg", sha256=TWICE,
                   model="mobilenet_v2"))  # fmt: skip
    bob.add(answer(("espresso", 0.1), ("cup", 0.05), file_name="his-unsure.jpg"))

    assert file_names(queue(alice, unsure_below=0.25)) == []  # no other model of hers answered
    assert file_names(queue(bob, unsure_below=0.25)) == ["his-unsure.jpg"]
    assert file_names(queue(store, unsure_below=0.25)) == ["his-unsure.jpg", "hers.jpg",
                                                           "his.jpg"]  # fmt: skip


def test_the_margin_of_one_kept_class_is_the_smallest_it_can_be():
    assert margin([0.7, 0.2]) == pytest.approx(0.5)
    assert margin([0.9]) == pytest.approx(0.8)  # the runner-up may hold all of the rest
    assert margin([0.3]) == 0.0  # a runner-up as likely cannot be ruled out


# --- The page -------------------------------------------------------------------------------


@pytest.fixture
def app_store(tmp_path, monkeypatch) -> HistoryStore:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    st.cache_data.clear()
    store = HistoryStore(url)
    yield store
    store.dispose()


def test_past_the_predictions_read_at_a_time_a_class_or_skips_bring_the_next_ones(
    app_store, monkeypatch
):
    """With more waiting than is read at a time, the class picker still lists every class,
    a class picked shows its own least sure, and skipping brings the next ones."""
    from classifier.history import review

    monkeypatch.setattr(review, "MAX_READ", 3)
    for i, sure in enumerate((0.05, 0.1, 0.15, 0.2)):
        app_store.add(answer(("tabby cat", sure), ("lynx", sure / 2), file_name=f"cat {i}.jpg"))
    for i, sure in enumerate((0.21, 0.22)):
        app_store.add(answer(("lynx", sure), ("tabby cat", sure / 2), file_name=f"lynx {i}.jpg"))

    at = review_page()
    picker = at.sidebar.selectbox(key="r_label")
    assert picker.options == ["Every class", "tabby cat (4)", "lynx (2)"]
    picker.set_value("lynx").run()
    assert shown_file(at) == "lynx 0.jpg"
    assert left(at) == "**2 left**"

    at.sidebar.selectbox(key="r_label").set_value(None).run()
    for expected in ("cat 0.jpg", "cat 1.jpg", "cat 2.jpg", "cat 3.jpg", "lynx 0.jpg"):
        assert shown_file(at) == expected
        at.button(key="r_skip").click().run()
    assert shown_file(at) == "lynx 1.jpg"
    assert left(at).endswith("· 5 skipped on this visit")
    at.button(key="r_skip").click().run()
    assert "Nothing to review: you skipped the last 6 on this visit." in said(at)


def test_past_the_predictions_read_at_a_time_counts_and_skips_are_of_entries(
    app_store, monkeypatch
):
    """Two sure models that agree make no entry; a photo saved twice by one model is one
    entry, counted once, and skipping it does not bring its older row back."""
    from classifier.history import review

    monkeypatch.setattr(review, "MAX_READ", 2)
    for i in range(3):
        for model in ("efficientnet_lite0", "mobilenet_v2"):
            app_store.add(answer(("mug", 0.9), file_name=f"mug {i}.jpg", model=model))
    twice = [
        app_store.add(answer(("lynx", 0.1), file_name="twice.jpg", sha256="d" * 64))
        for _ in range(2)
    ]
    for i, sure in enumerate((0.05, 0.15, 0.2)):
        app_store.add(answer(("tabby cat", sure), file_name=f"cat {i}.jpg"))

    assert review.label_counts(app_store) == [("tabby cat", 3), ("lynx", 1)]
    found = review.queue(app_store, skipped=[twice[-1]])
    assert "twice.jpg" not in [entry.file_name for entry in found.entries]
    assert review.skipped_among(app_store, [twice[-1]]) == [twice[-1]]


@pytest.fixture
def seeded(app_store) -> dict[str, int]:
    return add_queue_rows(app_store)


def review_page() -> AppTest:
    at = app_test(120).run()
    return at.switch_page("pages/review.py").run()


def said(at: AppTest) -> str:
    """Every sentence on the page and in its sidebar."""
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "success", "warning", "error", "subheader")
        for e in getattr(at, kind)
    ]
    parts += [e.value for e in at.sidebar.caption]
    return "\n".join(str(part) for part in parts)


def shown_file(at: AppTest) -> str:
    """The file name under the picture on screen."""
    return at.text[0].value.splitlines()[0]


def type_into(box, text: str) -> None:
    """Type a name into a selectbox that accepts new options, and press Enter: the browser
    sends the typed text as the value (AppTest alone only picks among the options)."""
    box.options.append(text)
    box.set_value(text).run()


def left(at: AppTest) -> str:
    return next(m.value for m in at.markdown if " left**" in m.value)


def test_one_prediction_at_a_time_least_sure_first_with_its_reasons(seeded):
    at = review_page()

    assert not at.exception
    assert shown_file(at) == "close.jpg"
    assert left(at) == "**5 left**"
    assert at.subheader[0].value == "tabby cat · 22%"
    assert "Below 25% sure: its best guess is 22%." in said(at)
    assert "the top two are 1% apart" in said(at)
    assert at.get("vega_lite_chart")  # its top classes
    assert list(at.table[0].value["Class"]) == ["tabby cat", "tiger cat", "lynx"]
    assert at.get("image")  # its picture
    assert [b.label for b in at.main.button if b.key and b.key.startswith("r_")] == [
        "Right", "Correct it", "Skip", "Not a usable photo",
        "Teach a model from these"]  # fmt: skip


def test_each_reason_is_said(seeded):
    at = review_page()
    for _ in range(2):  # close.jpg and unsure.jpg
        at.button(key="r_skip").click().run()
    assert shown_file(at) == "twice-a.jpg"
    assert (
        "Two models disagree: MobileNetV2 says tabby cat, EfficientNet-Lite0 says tiger cat."
        in said(at)
    )
    at.button(key="r_skip").click().run()
    assert (
        "Two models disagree: EfficientNet-Lite0 says tiger cat, MobileNetV2 says tabby cat."
        in said(at)
    )
    at.button(key="r_skip").click().run()
    assert shown_file(at) == "wrong.jpg"
    assert "Rated wrong, with no correction yet." in said(at)
    assert "sure:" not in said(at)  # 90%: not unsure


def test_right_saves_the_rating_and_moves_on(seeded, app_store):
    at = review_page()

    at.button(key="r_right").click().run()

    assert app_store.get(seeded["close.jpg"]).feedback == "correct"
    assert left(at) == "**4 left**"
    assert shown_file(at) == "unsure.jpg"
    assert "close.jpg: Saved: right." in said(at)


def test_not_a_usable_photo_is_kept_apart_and_moves_on(seeded, app_store):
    at = review_page()

    at.button(key="r_unusable").click().run()

    row = seeded["close.jpg"]
    assert (app_store.get(row).feedback, app_store.get(row).corrected_label) == ("unusable", None)
    assert left(at) == "**4 left**"
    assert shown_file(at) == "unsure.jpg"
    assert "close.jpg: Saved: not a usable photo." in said(at)

    at.switch_page("pages/history.py").run()
    at.sidebar.selectbox(key="h_feedback").set_value("unusable").run()
    assert list(at.dataframe[0].value["file"]) == ["close.jpg"]
    assert list(at.dataframe[0].value["feedback"]) == ["not usable"]  # in the page's words
    exported = list(csv.DictReader(io.StringIO(app_store.export_csv().decode())))
    assert [line["file_name"] for line in exported if line["feedback"] == "unusable"] == [
        "close.jpg"
    ]
    at.query_params["prediction"] = app_store.get(row).public_id
    at.run()
    assert at.feedback(key=f"feedback_{row}").value is None  # neither right nor wrong
    assert "Saved: not a usable photo." in said(at)


def test_skip_moves_on_for_this_visit_only(seeded, app_store):
    at = review_page()

    at.button(key="r_skip").click().run()

    assert app_store.get(seeded["close.jpg"]).feedback is None
    assert shown_file(at) == "unsure.jpg"
    assert left(at) == "**4 left** · 1 skipped on this visit"
    assert shown_file(review_page()) == "close.jpg"  # a new visit: back in the queue


def test_correcting_with_a_class_saves_it_moves_on_and_shows_in_history_and_exports(
    seeded, app_store
):
    at = review_page()

    at.button(key="r_correct").click().run()
    row = seeded["close.jpg"]
    assert at.selectbox(key=f"correction_{row}").options[:2] == ["tench", "goldfish"]
    at.selectbox(key=f"correction_{row}").set_value("lynx").run()

    saved = app_store.get(row)
    assert (saved.feedback, saved.corrected_label) == ("wrong", "lynx")
    assert shown_file(at) == "unsure.jpg"
    assert left(at) == "**4 left**"
    assert "close.jpg: Saved: wrong, it is lynx." in said(at)

    at.switch_page("pages/history.py").run()
    table = at.dataframe[0].value
    assert table.loc[table["file"] == "close.jpg", "corrected"].tolist() == ["lynx"]
    assert table.loc[table["file"] == "close.jpg", "feedback"].tolist() == ["wrong"]
    exported = list(csv.DictReader(io.StringIO(app_store.export_csv().decode())))
    [line] = [line for line in exported if line["file_name"] == "close.jpg"]
    assert (line["feedback"], line["corrected_label"]) == ("wrong", "lynx")


def test_a_prediction_reviewed_in_another_tab_is_never_said_to_be_saved_by_this_one(
    seeded, app_store
):
    at = review_page()
    row = seeded["close.jpg"]
    assert shown_file(at) == "close.jpg"
    assert app_store.set_feedback(row, "correct")  # in another tab, or by someone else

    at.button(key="r_skip").click().run()  # any action: the page is drawn again

    assert "close.jpg was reviewed meanwhile, elsewhere: right." in said(at)
    assert "Saved:" not in said(at)
    assert not at.success

    # Rated wrong without a correction; the correction box opened here (showing what is
    # kept), the correction made elsewhere: theirs is said.
    while shown_file(at) != "wrong.jpg":
        at.button(key="r_skip").click().run()
    at.button(key="r_correct").click().run()
    assert app_store.set_feedback(seeded["wrong.jpg"], "wrong", "lynx")
    at.button(key="r_skip").click().run()
    assert "wrong.jpg was reviewed meanwhile, elsewhere: wrong, it is lynx." in said(at)
    assert not at.success


def test_two_people_reviewing_at_once_never_write_over_each_other(seeded, app_store):
    """Both are shown the least sure prediction; the one who saves second is told, and the
    first one's correction stays."""
    first, second = review_page(), review_page()
    row = seeded["close.jpg"]
    assert shown_file(first) == shown_file(second) == "close.jpg"

    first.button(key="r_correct").click().run()
    first.selectbox(key=f"correction_{row}").set_value("lynx").run()
    second.button(key="r_right").click().run()

    saved = app_store.get(row)
    assert (saved.feedback, saved.corrected_label) == ("wrong", "lynx")
    assert [t.value for t in second.toast] == [
        "This prediction was reviewed meanwhile (by someone else, or in another tab); that "
        "review is kept, not this one."
    ]
    assert shown_file(second) == "unsure.jpg"
    assert "close.jpg was reviewed meanwhile, elsewhere: wrong, it is lynx." in said(second)
    assert "Saved:" not in said(second)  # nothing of this person's
    assert left(second) == "**4 left**"

    # Later on the visit, the prediction's page shows what is kept, not the refused click.
    open_its_page(second, app_store, row)
    assert second.feedback(key=f"feedback_{row}").value == 0
    assert second.selectbox(key=f"correction_{row}").value == "lynx"


def test_a_prediction_only_looked_at_here_is_the_persons_to_rate_on_its_own_page(seeded, app_store):
    """Only the Review page's own actions wait for the row to be still to review."""
    at, other = review_page(), review_page()
    row = seeded["close.jpg"]
    at.button(key="r_skip").click().run()
    other.button(key="r_right").click().run()
    correct_it_on_its_own_page(at, app_store, row)


def test_a_review_may_be_changed_afterwards_on_the_predictions_own_page(seeded, app_store):
    at = review_page()
    row = seeded["close.jpg"]
    at.button(key="r_right").click().run()
    correct_it_on_its_own_page(at, app_store, row)


def open_its_page(at: AppTest, store: HistoryStore, row: int) -> None:
    """Go to a prediction's own page (its link), as from History."""
    at.switch_page("pages/history.py").run()
    at.query_params["prediction"] = store.get(row).public_id
    at.run()


def correct_it_on_its_own_page(at: AppTest, store: HistoryStore, row: int) -> None:
    """Say on its page that it is wrong, a lynx: each change is saved, with nothing said of
    anyone else's review."""
    open_its_page(at, store, row)
    at.feedback(key=f"feedback_{row}").set_value(0).run()
    assert not at.toast and store.get(row).feedback == "wrong"
    at.selectbox(key=f"correction_{row}").set_value("lynx").run()
    assert not at.toast
    saved = store.get(row)
    assert (saved.feedback, saved.corrected_label) == ("wrong", "lynx")


def test_a_typed_name_of_their_own_is_kept_as_typed(seeded, app_store):
    at = review_page()
    at.button(key="r_correct").click().run()
    row = seeded["close.jpg"]

    type_into(at.selectbox(key=f"correction_{row}"), "the neighbours' cat")

    assert app_store.get(row).corrected_label == "the neighbours' cat"
    assert shown_file(at) == "unsure.jpg"
    assert "your own name, not one of the model's 1,000 classes" in said(at)


def test_a_typed_name_some_classes_hold_asks_which_and_stays_until_answered(seeded, app_store):
    at = review_page()
    at.button(key="r_correct").click().run()
    row = seeded["close.jpg"]

    type_into(at.selectbox(key=f"correction_{row}"), "crane")

    assert shown_file(at) == "close.jpg"  # still here: which crane?
    assert app_store.get(row).corrected_label is None
    assert left(at) == "**5 left**"
    at.button_group(key=f"correction_choice_{row}").set_value("crane").run()
    assert app_store.get(row).corrected_label == "crane"
    assert shown_file(at) == "unsure.jpg"
    assert left(at) == "**4 left**"


def test_a_prediction_rated_wrong_is_corrected_here(seeded, app_store):
    at = review_page()
    for _ in range(4):
        at.button(key="r_skip").click().run()
    row = seeded["wrong.jpg"]
    at.button(key="r_correct").click().run()
    assert "Saved: wrong." in said(at)  # what the history holds so far

    at.selectbox(key=f"correction_{row}").set_value("tiger cat").run()

    assert app_store.get(row).corrected_label == "tiger cat"
    assert "Nothing to review: you skipped the last 4 on this visit." in said(at)
    at.button(key="r_unskip").click().run()
    assert left(at) == "**4 left**"
    assert shown_file(at) == "close.jpg"


@pytest.mark.parametrize(
    ("set_filter", "expected"),
    [
        (lambda at: at.sidebar.multiselect(key="r_models").set_value(["mobilenet_v2"]), 2),
        (lambda at: at.sidebar.selectbox(key="r_label").set_value("tabby cat"), 3),
        (
            lambda at: at.sidebar.text_input(key="r_to").set_value(
                f"{NOW - timedelta(days=2):%Y-%m-%d}"
            ),
            2,
        ),
        (lambda at: at.sidebar.slider(key="threshold").set_value(0.1), 3),
    ],
    ids=["model", "class", "date", "threshold"],
)
def test_filters_narrow_the_queue(seeded, set_filter, expected):
    at = review_page()
    set_filter(at).run()
    assert left(at) == f"**{expected} left**"


def test_the_class_filter_offers_the_classes_in_the_queue_with_their_counts(seeded):
    at = review_page()
    picker = at.sidebar.selectbox(key="r_label")
    assert picker.options == [
        "Every class", "tabby cat (3)", "espresso (1)", "tiger cat (1)"]  # fmt: skip

    picker.set_value("espresso").run()
    at.button(key="r_right").click().run()

    assert "Nothing to review: no saved prediction that these filters select" in said(at)
    assert at.sidebar.selectbox(key="r_label").value == "espresso"  # still picked, now (0)
    at.button(key="r_reset_empty").click().run()
    assert left(at) == "**4 left**"


def test_the_threshold_is_the_classify_pages(seeded):
    at = review_page()
    at.sidebar.slider(key="threshold").set_value(0.5).run()
    assert left(at) == "**5 left**"  # 60% and 70% stay above it
    at.switch_page("pages/classify.py").run()
    assert at.sidebar.slider(key="threshold").value == 0.5


def test_an_empty_queue_says_so_and_links_to_classify(app_store):
    app_store.add(answer(("tabby cat", 0.95), ("lynx", 0.01), file_name="sure.jpg"))

    at = review_page()

    assert not at.exception
    assert [i.value for i in at.info] == [
        "Nothing to review: no saved prediction is below 25% sure, rated wrong without a "
        "correction, or answered differently by two models."
    ]
    [link] = at.get("page_link")
    assert link.value == "Go to Classify"
    assert link.proto.page_script_hash == calc_hash("classify")  # the page at /classify


def test_names_show_as_written(app_store):
    app_store.add(answer(("*new* [x](y)", 0.6), ("b", 0.3), file_name="**bold**.jpg",
                         sha256=TWICE, model="My_model: *v2*"))  # fmt: skip
    app_store.add(answer(("tench", 0.9), ("b", 0.05), file_name="t.jpg", sha256=TWICE))

    at = review_page()

    assert shown_file(at) == "**bold**.jpg"  # st.text: never Markdown
    assert r"My_model\: \*v2\* says \*new\* \[x\](y)" in said(at)
    assert at.subheader[0].value == r"\*new\* \[x\](y) · 60%"


def test_a_private_visitor_reviews_only_their_own(app_store):
    alice = app_store.scoped(Scope.own(owner_of(ALICE)))
    bob = app_store.scoped(Scope.own(owner_of(BOB)))
    alice.add(answer(("tabby cat", 0.2), ("lynx", 0.1), file_name="hers.jpg"))
    bob.add(answer(("espresso", 0.2), ("cup", 0.15), file_name="his.jpg"))
    app_store.add(answer(("tench", 0.2), ("cup", 0.19), file_name="nobodys.jpg"))

    at = open_app(signed_in=ALICE, page="pages/review.py")

    assert shown_file(at) == "hers.jpg"
    assert left(at) == "**1 left**"
    at.button(key="r_right").click().run()
    assert "Nothing to review:" in said(at)

    signed_out = open_app(page="pages/review.py")
    assert "Sign in to keep your history" in said(signed_out)
    assert not signed_out.text  # no picture, no file name


def test_the_photo_kept_to_teach_from_is_shown_larger_than_the_thumbnail(app_store):
    kept = images.reduced_copy(Image.new("RGB", (960, 640), (20, 90, 200)))
    app_store.add(answer(("tabby cat", 0.15), ("lynx", 0.1), file_name="kept.jpg", photo=kept))
    at = review_page()
    (shown,) = at.get("image")
    assert pictures.inline(kept) in str(shown.proto)
    assert pictures.inline(THUMBNAIL) not in str(shown.proto)


def test_the_same_photo_saved_again_with_the_same_model_is_one_entry(app_store):
    again = hashlib.sha256(b"my cat, uploaded three times").hexdigest()
    ids = [
        app_store.add(
            answer(("tabby cat", 0.15), ("lynx", 0.1), file_name=f"visit {i}.jpg", sha256=again)
        )
        for i in range(3)
    ]
    other = app_store.add(answer(("lynx", 0.2), ("tabby cat", 0.1), file_name="x.jpg",
                                 sha256=again, model="mobilenet_v2"))  # fmt: skip
    found = queue(app_store, Filters(models=("efficientnet_lite0",)))
    assert [entry.id for entry in found.entries] == [ids[-1]]  # the newest, once

    app_store.set_feedback(ids[-1], "correct")
    assert queue(app_store, Filters(models=("efficientnet_lite0",))).entries == ()
    assert [entry.id for entry in queue(app_store).entries] == [other]  # another model's


def test_a_long_queue_is_read_the_least_sure_first_and_says_there_is_more(app_store, monkeypatch):
    from classifier.history import review

    monkeypatch.setattr(review, "MAX_READ", 3)
    for i, sure in enumerate((0.2, 0.05, 0.15, 0.1, 0.22)):
        app_store.add(answer(("tabby cat", sure), ("lynx", sure / 2), file_name=f"{i}.jpg"))
    found = queue(app_store)
    assert [entry.file_name for entry in found.entries] == ["1.jpg", "3.jpg", "2.jpg"]
    assert found.more
    assert not queue(app_store, Filters(min_confidence=0.12)).more  # three: all read

    at = review_page()
    assert "**3 left** · and more: the 3 least sure are read at a time" in [
        m.value for m in at.markdown
    ]
