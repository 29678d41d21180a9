"""The Streamlit app, driven with AppTest: pages, uploads, the chart, errors, settings."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from classifier.runtime import engines
from tests.conftest import ROOT
from tests.helpers import CAT_CLASSES, app_test, in_sight

APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(autouse=True)
def fresh_app_state(tmp_path, monkeypatch, lite0):
    """Each test gets its own history database and no cached predictions."""
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", f"sqlite:///{tmp_path / 'history.db'}")
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def engine_calls(monkeypatch) -> list[int]:
    """Count how many images a LiteRT classifier (1,000 classes) runs: not the map model
    that "Where it looked" opens, which a saved thumbnail's overlay uses once it is open."""
    calls: list[int] = []
    original = engines.LiteRTEngine.run

    def counting(self, batch):
        if self.classes == 1000:
            calls.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(engines.LiteRTEngine, "run", counting)
    return calls


def start(model: str = "efficientnet_lite0") -> AppTest:
    at = app_test(300)
    at.run()
    at.sidebar.selectbox(key="model").set_value(model).run()
    return at


def coffee_saved(coffee_jpeg: bytes, tmp_path):
    """Classify the coffee photo; return the page, the history and its saved row."""
    from classifier.history import HistoryStore

    at = start()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    [saved] = store.find()
    return at, store, saved


def chart_rows(at: AppTest, number: int = 0):
    """Return the data frame behind the page's nth Altair chart."""
    proto = at.get("vega_lite_chart")[number].proto
    return pa.ipc.open_stream(proto.datasets[0].data.data).read_all().to_pandas()


@pytest.mark.parametrize("page", ["pages/classify.py", "pages/history.py", "pages/models.py"])
def test_every_page_runs_without_exception(page):
    at = app_test(120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    assert at.title


def test_a_mistyped_setting_is_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_MAX_BYTES", "20MB")
    at = app_test(120).run()
    assert not at.exception
    assert (
        "environment variable CLASSIFIER_MAX_BYTES" in at.error[0].value
        and "'20MB'" in at.error[0].value
    )


def test_first_visit_explains_what_to_do():
    at = app_test(120).run()
    assert "Drop one or more photos" in at.info[0].value
    assert not in_sight(at, "vega_lite_chart")
    assert not in_sight(at, "table") and not in_sight(at, "image")
    assert len(at.get("vega_lite_chart")) == 1  # the stand-in, out of sight


def test_upload_shows_headline_chart_and_table(chelsea_png, engine_calls):
    at = start()
    at.file_uploader(key="uploads").set_value(("chelsea.png", chelsea_png, "image/png")).run()
    assert not at.exception
    headline = at.subheader[0].value
    assert any(label in headline for label in CAT_CLASSES)
    rows = chart_rows(at)
    assert len(rows) == 5
    assert list(rows["probability"]) == sorted(rows["probability"], reverse=True)
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["encoding"]["x"]["axis"]["format"] == "%"  # a percent axis
    assert spec["encoding"]["y"]["axis"]["labelLimit"] == 0  # whole class names, never cut
    assert (
        spec["encoding"]["color"]["condition"]["test"] == "(datum.rank === 1)"
    )  # top-1 stands out
    assert [t["field"] for t in spec["encoding"]["tooltip"]] == ["label", "probability"]
    table = at.table[0].value  # exact shares, best first, beside the chart
    assert list(table.columns) == ["Class", "Probability"] and len(table) == 5
    assert table["Class"].tolist() == rows["label"].tolist()
    assert table["Probability"].tolist() == [f"{p:.1%}" for p in rows["probability"]]
    assert any("EfficientNet-Lite0 on LiteRT" in c.value for c in at.caption)
    assert engine_calls == [1]

    at.sidebar.slider(key="top_k").set_value(3).run()
    assert len(chart_rows(at)) == 3
    assert len(at.table[0].value) == 3
    assert engine_calls == [1]  # the slider reused the cached prediction


def test_the_top_k_chart_is_altairs_spec_with_each_answers_own_rows():
    """Altair writes the chart once; each answer's spec is that one with its rows, and
    filling one never changes the next."""
    from classifier import charts
    from classifier.labels import TopClass

    tabby = charts.top_k_frame([TopClass("tabby", 281, 0.8), TopClass("tiger cat", 282, 0.1)])
    tench = charts.top_k_frame([TopClass("tench", 0, 0.6)])
    first, second = charts.probability_spec(tabby), charts.probability_spec(tench)
    assert first["datasets"]["top_k"] is tabby and second["datasets"]["top_k"] is tench
    assert first["data"] == {"name": "top_k"}
    # As st.altair_chart would send it: Altair's own spec, without its default theme.
    altair = charts.probability_chart(tabby).to_dict()
    for spec in (first, altair):
        spec.pop("datasets"), spec.pop("data"), spec.pop("config", None)
    assert first == altair and "config" not in charts.probability_spec(tabby)


def test_file_name_and_size_are_shown_as_plain_text(coffee_jpeg):
    name = "'); DROP TABLE x;-- <b>bold</b> *stars* [y](javascript:z).jpg"
    at = start()
    at.file_uploader(key="uploads").set_value((name, coffee_jpeg, "image/jpeg")).run()
    texts = [t.value for t in at.text]
    assert any(t.startswith(name + "\n") and "600×400 JPEG" in t for t in texts), texts
    # In the uploader's unit: a KB is 1,000 bytes, as its chip says beside the file.
    size = f"{-(-len(coffee_jpeg) // 100) / 10:g} KB"  # rounded up to a tenth
    assert any(f"\n{size} · 600×400" in t for t in texts), (size, texts)


def test_a_text_file_named_png_gets_the_librarys_message_and_the_photo_still_runs(chelsea_png):
    at = start()
    at.file_uploader(key="uploads").set_value(
        [("cat.png", b"this is not a picture, just text\n", "image/png"),
         ("chelsea.png", chelsea_png, "image/png")]
    ).run()  # fmt: skip
    assert not at.exception
    [error] = at.error
    assert "This file is not a picture we can read (detected: text)" in error.value
    table = at.dataframe[0].value
    assert list(table["file"]) == ["cat.png", "chelsea.png"]  # the failed file is listed too
    assert table["note"][0].startswith("This file is not a picture we can read")
    assert table["top-1"][1] in CAT_CLASSES


def test_several_files_get_a_table_and_one_expander_each(chelsea_png, coffee_jpeg):
    at = start()
    at.file_uploader(key="uploads").set_value(
        [("chelsea.png", chelsea_png, "image/png"), ("coffee.jpg", coffee_jpeg, "image/jpeg")]
    ).run()
    table = at.dataframe[0].value
    assert list(table["#"]) == [1, 2]
    assert list(table["file"]) == ["chelsea.png", "coffee.jpg"]
    assert table["top-1"][1] == "espresso"
    assert table["picture"][0].startswith("data:image/webp;base64,")
    sections = [e.label for e in at.expander if e.label[0].isdigit()]
    assert sections[1].startswith("2. coffee.jpg: espresso · ")
    assert sections[0].startswith("1. chelsea.png: ")
    assert len(at.get("vega_lite_chart")) == 2


def test_the_summary_flags_unsure_answers(chelsea_png, coffee_jpeg):
    at = start()
    at.sidebar.slider(key="threshold").set_value(0.9).run()
    at.file_uploader(key="uploads").set_value(
        [("chelsea.png", chelsea_png, "image/png"), ("coffee.jpg", coffee_jpeg, "image/jpeg")]
    ).run()
    table = at.dataframe[0].value
    assert list(table["note"]) == ["unsure", ""]  # the cat is under 90 %, the espresso is not


NOT_A_PICTURE = b"this is not a picture, just text\n"


def several(at: AppTest, chelsea_png: bytes, coffee_jpeg: bytes) -> AppTest:
    """Drop a cat, a cup of coffee and a text file named .png on the page."""
    return at.file_uploader(key="uploads").set_value(
        [("chelsea.png", chelsea_png, "image/png"), ("coffee.jpg", coffee_jpeg, "image/jpeg"),
         ("notes.png", NOT_A_PICTURE, "image/png")]
    ).run()  # fmt: skip


def sections(at: AppTest) -> list[str]:
    return [e.label for e in at.expander if e.label[0].isdigit()]


def test_a_failed_file_in_the_summary_shows_no_none_and_its_whole_reason(chelsea_png, coffee_jpeg):
    at = several(start(), chelsea_png, coffee_jpeg)
    [error] = at.error
    table = at.dataframe[0]
    assert table.proto.HasField("placeholder") and table.proto.placeholder == ""  # not "None"
    failed = table.value.iloc[2]
    assert failed["file"] == "notes.png" and failed["picture"] == "" and failed["top-1"] == ""
    assert not any(cell is None or cell == "None" for cell in table.value.to_numpy().ravel())
    # Its first sentence, which fits the wide column; the section below says it in full.
    assert failed["note"] == "This file is not a picture we can read (detected: text)."
    assert error.value.startswith(failed["note"] + " Accepted: ") and error.value.endswith("HEIC.")
    config = json.loads(table.proto.columns)
    assert config["note"]["width"] == "large"


def test_sections_mark_unsure_answers_in_their_titles(chelsea_png, coffee_jpeg):
    at = start()
    at.sidebar.slider(key="threshold").set_value(0.9).run()
    several(at, chelsea_png, coffee_jpeg)
    cat, coffee = sections(at)
    assert cat.startswith("1. chelsea.png: ") and cat.endswith(" · unsure")
    assert coffee.startswith("2. coffee.jpg: espresso · ") and "unsure" not in coffee


def test_the_filter_shows_only_unsure_or_failed_photos(chelsea_png, coffee_jpeg):
    at = start()
    at.sidebar.slider(key="threshold").set_value(0.9).run()
    several(at, chelsea_png, coffee_jpeg)
    shown = at.button_group(key="results_shown")
    assert shown.value == "All" and shown.options == ["All (3)", "Unsure (1)", "Failed (1)"]

    shown.set_value("Unsure").run()
    assert list(at.dataframe[0].value["file"]) == ["chelsea.png"]
    assert [label.split(":")[0] for label in sections(at)] == ["1. chelsea.png"]
    assert not at.error  # the failed file's section is not shown

    at.button_group(key="results_shown").set_value("Failed").run()
    assert list(at.dataframe[0].value["file"]) == ["notes.png"]
    assert list(at.dataframe[0].value["#"]) == [3]  # numbered as in the whole list
    assert not sections(at) and at.error[0].value.startswith("This file is not a picture")

    at.sidebar.slider(key="threshold").set_value(0.0).run()
    at.button_group(key="results_shown").set_value("Unsure").run()
    assert not at.dataframe and "No photo is below the confidence threshold." in at.info[0].value


def test_an_answer_the_filter_hides_is_saved_all_the_same(chelsea_png, coffee_jpeg, tmp_path):
    from classifier.history import HistoryStore

    at = start()
    several(at, chelsea_png, coffee_jpeg)
    at.button_group(key="results_shown").set_value("Failed").run()
    at.file_uploader(key="uploads").set_value(
        [("tabby.png", chelsea_png + b"", "image/png"), ("notes.png", NOT_A_PICTURE, "image/png")]
    ).run()
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    assert sorted(r.file_name for r in store.find()) == ["chelsea.png", "coffee.jpg", "tabby.png"]
    store.dispose()


def test_open_every_section_opens_them_all(chelsea_png, coffee_jpeg):
    at = several(start(), chelsea_png, coffee_jpeg)
    opened = [e.proto.expanded for e in at.expander if e.label[0].isdigit()]
    assert opened == [False, False]
    at.toggle(key="results_open_all").set_value(True).run()
    opened = [e.proto.expanded for e in at.expander if e.label[0].isdigit()]
    assert opened == [True, True]


def test_several_photos_offer_their_answers_as_csv_and_json(chelsea_png, coffee_jpeg, lite0):
    import csv
    import io

    from classifier.predict import classify
    from ui import results
    from ui.sidebar import Choices
    from ui.uploads import Upload

    at = several(start(), chelsea_png, coffee_jpeg)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download JSON"]

    # What the buttons hold, made from the same answers (AppTest has no file server).
    uploads = [Upload("1", "=cat.png", chelsea_png), Upload("2", "notes.png", NOT_A_PICTURE)]
    outcomes = [classify(chelsea_png, lite0), "This file is not a picture we can read."]
    choices = Choices("efficientnet_lite0", 3, 0.9, save=False, save_thumbnails=False)
    rows = results.export_rows(results.answered(uploads, outcomes), choices)
    [cat, notes] = json.loads(results.results_json(rows))
    assert cat["file"] == "=cat.png" and cat["model"] == "efficientnet_lite0"
    assert cat["top-1"] in CAT_CLASSES and cat["note"] == "unsure"
    assert cat["top-k"][0]["label"] == cat["top-1"] and len(cat["top-k"]) == 3
    assert notes["top-1"] is None and notes["note"] == "This file is not a picture we can read."
    table = list(csv.DictReader(io.StringIO(results.results_csv(rows).decode())))
    assert list(table[0]) == ["file", "model", "top-1", "confidence", "top-k", "note"]
    assert table[0]["file"] == "'=cat.png"  # no spreadsheet runs it as a formula
    assert table[0]["top-k"].startswith(f"{cat['top-1']} {cat['confidence']:.1%}; ")
    assert table[1]["note"] == "This file is not a picture we can read."


def test_low_confidence_says_the_model_is_unsure(chelsea_png):
    at = start()
    at.sidebar.slider(key="threshold").set_value(0.9).run()
    at.file_uploader(key="uploads").set_value(("chelsea.png", chelsea_png, "image/png")).run()
    assert any(
        "The model is unsure" in i.value and "1,000 ImageNet classes" in i.value for i in at.info
    )


def test_confident_prediction_has_no_unsure_message(coffee_jpeg):
    at = start()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert at.subheader[0].value.startswith("espresso")
    assert not any("unsure" in i.value for i in at.info)


def test_picking_an_unavailable_model_says_who_answers_once_not_on_every_answer(chelsea_png):
    at = start("mobilenet_v2")
    at.file_uploader(key="uploads").set_value(("chelsea.png", chelsea_png, "image/png")).run()
    assert "Answers come from EfficientNet-Lite0." in [c.value for c in at.sidebar.caption]
    assert not at.warning  # no banner on the answer itself
    assert any(label in at.subheader[0].value for label in CAT_CLASSES)
    assert any("EfficientNet-Lite0 on LiteRT" in c.value for c in at.main.caption)


def test_offline_the_app_opens_on_a_model_that_can_run_with_one_note():
    at = app_test(120).run()
    assert at.sidebar.selectbox(key="model").value == "efficientnet_lite0"
    [note] = at.sidebar.info
    assert note.value == (
        "MobileNetV2, the configured default, has no ImageNet weights here, "
        "so the app opened on EfficientNet-Lite0."
    )
    at.sidebar.slider(key="top_k").set_value(3).run()
    assert not at.sidebar.info  # said once


def test_an_unknown_default_model_names_its_variable(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_MODEL", "resnet")
    at = app_test(120).run()
    assert not at.exception
    assert "CLASSIFIER_MODEL" in at.error[0].value and "'resnet'" in at.error[0].value


def test_a_cached_answer_says_so_instead_of_repeating_old_timings(coffee_jpeg):
    at = start()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert any(c.value.startswith("EfficientNet-Lite0 on LiteRT · ") for c in at.main.caption)
    at.sidebar.slider(key="top_k").set_value(3).run()
    assert any(c.value.startswith("Cached answer from ") for c in at.main.caption)


def test_an_example_photo_classifies_with_one_click():
    at = start()
    at.button(key="example_coffee").click().run()
    assert at.subheader[0].value.startswith("espresso")


def test_what_the_model_saw_shows_the_input_crop(coffee_jpeg):
    at = start()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    [expander] = [e for e in at.expander if e.label == "What the model saw"]
    captions = [
        element.proto.imgs[0].caption
        for column in expander.columns
        for element in column.children.values()
    ]
    assert captions == [
        "Your picture, with the square the network looked at",
        "The 224×224 centre crop the network classified",
    ]


def test_pictures_survive_a_page_switch(coffee_jpeg):
    at = start()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    at.switch_page("pages/history.py").run()
    at.switch_page("pages/classify.py").run()
    assert at.subheader[0].value.startswith("espresso")
    assert any("kept while you were on another page" in c.value for c in at.caption)
    at.sidebar.slider(key="top_k").set_value(3).run()  # any later interaction keeps them
    assert at.subheader[0].value.startswith("espresso")
    assert len(chart_rows(at)) == 3

    at.button(key="clear_kept").click().run()
    assert "Drop one or more photos" in at.info[0].value


def test_new_pictures_replace_the_kept_ones(coffee_jpeg, chelsea_png):
    at = start()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    at.switch_page("pages/models.py").run()
    at.switch_page("pages/classify.py").run()
    at.file_uploader(key="uploads").set_value(("chelsea.png", chelsea_png, "image/png")).run()
    assert any(label in at.subheader[0].value for label in CAT_CLASSES)
    assert not any("kept while you were" in c.value for c in at.caption)


def test_removing_the_pictures_empties_the_page(coffee_jpeg):
    at = start()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    at.file_uploader(key="uploads").set_value(None).run()
    assert "Drop one or more photos" in at.info[0].value


def test_unavailable_models_are_marked_in_the_picker():
    at = start()
    picker = at.sidebar.selectbox(key="model")
    assert "MobileNetV2 (unavailable)" in picker.options
    assert "EfficientNet-Lite0" in picker.options


def test_settings_survive_a_page_switch():
    at = start()
    at.sidebar.slider(key="top_k").set_value(7).run()
    at.switch_page("pages/models.py").run()
    at.switch_page("pages/classify.py").run()
    assert at.sidebar.slider(key="top_k").value == 7
    assert at.sidebar.selectbox(key="model").value == "efficientnet_lite0"


def test_models_page_lists_every_model():
    at = app_test(120).run()
    at.switch_page("pages/models.py").run()
    table = at.dataframe[0].value
    assert list(table["name"]) == [
        "mobilenet_v2", "mobilenet", "mobilenet_v3_small", "mobilenet_v3_large",
        "efficientnet_lite0",
    ]  # fmt: skip
    assert table.set_index("name").loc["efficientnet_lite0", "weights"] == "available"
    assert table.set_index("name").loc["mobilenet_v2", "weights"] == "not available here"


def test_models_page_measures_latency_on_demand():
    at = app_test(120).run()
    at.switch_page("pages/models.py").run()
    at.button(key="measure_efficientnet_lite0").click().run()
    [result] = at.success
    assert "ms per image on LiteRT, median of 20 runs" in result.value
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["efficientnet_lite0", "latency"].endswith(" ms")
    assert table.loc["mobilenet", "latency"] == "answered by EfficientNet-Lite0"  # offline


def test_a_model_that_falls_back_is_timed_as_the_model_that_answers():
    at = app_test(120).run()
    at.switch_page("pages/models.py").run()
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["mobilenet_v2", "latency"] == "answered by EfficientNet-Lite0"
    assert "measure_mobilenet_v2" not in [button.key for button in at.button]
    at.button(key="measure_efficientnet_lite0").click().run()
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["efficientnet_lite0", "latency"].endswith(" ms")
    assert table.loc["mobilenet_v2", "latency"] == "answered by EfficientNet-Lite0"


def test_the_models_page_shows_no_server_paths():
    at = app_test(120).run()
    at.switch_page("pages/models.py").run()
    shown = [element.value for element in (*at.text, *at.warning, *at.markdown, *at.caption)]
    assert shown and not any("/" in text for text in shown), shown


def test_use_camera_shows_the_camera():
    at = start()
    assert not at.camera_input
    at.toggle(key="use_camera").set_value(True).run()
    assert at.camera_input[0].label == "Take a photo"


def test_a_broken_secrets_file_is_said_on_every_run(broken_secrets, tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path))
    at = app_test(120).run()
    cannot = "The app's secrets cannot name the history database"
    assert any(error.value.startswith(cannot) for error in at.sidebar.error)
    at.sidebar.slider(key="top_k").set_value(3).run()
    assert any(error.value.startswith(cannot) for error in at.sidebar.error)
    assert not (tmp_path / "history.db").exists()  # no other database was opened instead


def test_feedback_is_acknowledged(coffee_jpeg, tmp_path):
    at, store, saved = coffee_saved(coffee_jpeg, tmp_path)
    at.feedback(key=f"feedback_{saved.id}").set_value(1).run()
    assert "Saved: right." in [c.value for c in at.main.caption]
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    at.selectbox(key=f"correction_{saved.id}").set_value("tea cup").run()
    assert "Saved: wrong, it is tea cup." in [c.value for c in at.main.caption]
    assert store.get(saved.id).corrected_label == "tea cup"
    store.dispose()


def test_the_models_own_answer_is_no_correction(coffee_jpeg, tmp_path):
    at, store, saved = coffee_saved(coffee_jpeg, tmp_path)
    assert saved.top1_label == "espresso"
    # As the box sends "Espresso" typed and Enter pressed (AppTest cannot type into it):
    # not kept, and said.
    at.session_state[f"correction_{saved.id}"] = "Espresso"
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    box = at.selectbox(key=f"correction_{saved.id}")
    assert "espresso" not in box.options and "tea cup" in box.options  # not offered
    said = [c.value for c in at.main.caption]
    assert (
        "Espresso is the model's own answer: pick what the photo really shows, or say the "
        "model was right." in said
    )
    assert "Saved: wrong." in said
    assert at.selectbox(key=f"correction_{saved.id}").value is None
    kept = store.get(saved.id)
    assert (kept.feedback, kept.corrected_label) == ("wrong", None)
    at.selectbox(key=f"correction_{saved.id}").set_value("tea cup").run()  # a real one
    assert not any("own answer" in c.value for c in at.main.caption)
    assert store.get(saved.id).corrected_label == "tea cup"
    store.dispose()


def test_a_typed_name_too_long_to_keep_is_said_and_the_thumbs_down_kept(coffee_jpeg, tmp_path):
    at, store, saved = coffee_saved(coffee_jpeg, tmp_path)
    at.session_state[f"correction_{saved.id}"] = "a long name " * 20  # 240 characters typed
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()

    said = [c.value for c in at.main.caption]
    assert "That name is longer than 200 characters: type a shorter one." in said
    assert "Saved: wrong." in said
    assert not any("could not be saved" in t.value for t in at.toast)
    assert at.selectbox(key=f"correction_{saved.id}").value is None
    kept = store.get(saved.id)
    assert (kept.feedback, kept.corrected_label) == ("wrong", None)

    at.selectbox(key=f"correction_{saved.id}").set_value("tea cup").run()
    at.selectbox(key=f"correction_{saved.id}").options.append("a long name " * 20)
    at.selectbox(key=f"correction_{saved.id}").set_value("a long name " * 20).run()
    assert "That name is longer than 200 characters: type a shorter one." in [
        c.value for c in at.main.caption
    ]
    assert store.get(saved.id).corrected_label == "tea cup"  # what was saved stays
    assert at.selectbox(key=f"correction_{saved.id}").value == "tea cup"
    store.dispose()


def test_a_typed_name_only_the_answer_holds_is_kept_as_typed(chelsea_png, tmp_path):
    from classifier import labels
    from classifier.history import HistoryStore
    from ui.saving import matching_classes

    at = start()
    at.file_uploader(key="uploads").set_value(("cat.png", chelsea_png, "image/png")).run()
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    [saved] = store.find()
    answer = saved.top1_label
    # A word of the answer that no other class holds ("tabby" of "tabby cat").
    typed = next(
        word
        for word in answer.split()
        if matching_classes(word, labels.labels()) == [answer] and word != answer
    )
    at.session_state[f"correction_{saved.id}"] = typed  # as the box sends it typed
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    assert not [g for g in at.button_group if g.key == f"correction_choice_{saved.id}"]
    assert store.get(saved.id).corrected_label == typed  # not held back for a question
    assert any(f"“{typed}” (your own name" in c.value for c in at.main.caption)
    store.dispose()


def test_a_correction_names_the_answer_exactly_or_but_for_its_case():
    from classifier.labels import names_the_answer

    assert names_the_answer(" espresso ", "espresso")
    assert names_the_answer("ESPRESSO", "espresso", ("espresso", "tea cup"))
    assert names_the_answer("egyptian_mau", "Egyptian Mau")  # as a program may write it
    assert names_the_answer("Egyptian  mau", "Egyptian Mau")
    assert not names_the_answer("Egyptian", "Egyptian Mau")
    assert not names_the_answer("tea cup", "espresso", ("espresso", "tea cup"))
    # An added model may have classes that differ only by case: each is its own class.
    assert not names_the_answer("cat", "Cat", ("Cat", "cat"))
    assert names_the_answer("Cat", "Cat", ("Cat", "cat"))
    assert not names_the_answer("espresso", None)


def test_a_typed_correction_outside_the_classes_is_kept_apart_from_them():
    from ui.saving import saved_sentence

    # AppTest cannot type a new option into a selectbox; the browser test does.
    assert saved_sentence("wrong", "giraffe") == (
        "Saved: wrong, it is “giraffe” (your own name, not one of the model's 1,000 classes)."
    )
    assert saved_sentence("wrong", "construction crane") == (
        "Saved: wrong, it is construction crane."
    )
    # An added model's own classes.
    assert saved_sentence("wrong", "Dog", ("Cat", "Dog")) == "Saved: wrong, it is Dog."
    assert saved_sentence("wrong", "tea cup", ("Cat", "Dog")) == (
        "Saved: wrong, it is “tea cup” (your own name, not one of the model's 2 classes)."
    )


def test_objects_made_by_imports_are_frozen_once_per_process(monkeypatch):
    """Streamlit collects garbage after every run; the app freezes what the first run's
    imports made, so that collection skips it, and never again (a frozen object is never
    collected, so a later freeze would pin the sessions open then)."""
    import gc
    import sys
    import types

    from ui import resources

    real, collections = gc.collect, []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or real(*args))
    monkeypatch.setattr(resources, "_frozen", False)
    before = gc.get_freeze_count()
    try:
        resources.freeze_imported_objects()
        assert len(collections) == 1 and gc.get_freeze_count() > before
        monkeypatch.setitem(sys.modules, "a_page_import", types.ModuleType("a_page_import"))
        resources.freeze_imported_objects()  # a page's later imports: not frozen
        assert len(collections) == 1
    finally:
        gc.unfreeze()  # the rest of the test run collects as usual


@pytest.mark.parametrize(
    "name",
    [
        "![x](http://tracker.invalid/p.png) *new* _old_ `code` <b>x</b> ~~gone~~ a\\b &amp;",
        "- item",
        "+ item",
        "12. first",
        "3) third",
        "# Heading",
        "> quoted",
        "jack-o'-lantern",
    ],
)
def test_names_people_chose_show_as_written_not_as_markdown(name):
    """Class, model and file names go into headlines, captions and table cells, which
    Streamlit renders as Markdown: escaped, they show exactly as typed (no link, no
    image fetched from elsewhere, no list or heading)."""
    from markdown_it import MarkdownIt

    from ui.columns import WORD_JOINER, plain

    shown = MarkdownIt("commonmark").enable("strikethrough").render(plain(name)).strip()
    shown = shown.replace(WORD_JOINER, "")  # keeps web addresses from becoming links
    as_text = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert shown == f"<p>{as_text}</p>"


@pytest.mark.parametrize(
    "name", ["Verify your account at http://evil.example/verify", "HTTPS://x.example"]
)
def test_web_addresses_in_names_are_not_made_links(name):
    """Streamlit links bare web addresses too (GitHub's autolinks): never in a name."""
    from markdown_it import MarkdownIt

    from ui.columns import WORD_JOINER, plain

    linking = MarkdownIt("commonmark", {"linkify": True}).enable("linkify")
    linking.linkify.set({"fuzzy_link": False, "fuzzy_email": False})  # as GitHub's
    assert "<a" in linking.render(name)  # what would happen without plain()
    shown = linking.render(plain(name)).strip()
    assert "<a" not in shown
    assert shown.replace(WORD_JOINER, "") == f"<p>{name}</p>"


def test_www_addresses_in_names_lose_what_makes_them_links():
    from ui.columns import WORD_JOINER, plain

    shown = plain("see www.evil.example or WWW.evil.example")
    assert "www." not in shown.lower()
    assert shown.replace(WORD_JOINER, "") == "see www.evil.example or WWW.evil.example"


def test_streamlit_directives_and_math_in_names_are_escaped():
    from ui.columns import plain

    assert plain(":red[alert] :material/home: $x^2$") == (
        "\\:red\\[alert\\] \\:material/home\\: \\$x^2\\$"
    )


def test_an_example_is_not_saved_and_says_so(tmp_path):
    from classifier.history import HistoryStore

    at = start()
    at.session_state["example"] = "Cat"  # as a click on the Cat example picks it
    at.run()
    assert at.subheader[0].value  # answered
    assert "Examples are not saved to your history." in [c.value for c in at.main.caption]
    assert not at.get("feedback")  # no row to rate
    at.sidebar.slider(key="top_k").set_value(3).run()
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    assert store.count() == 0
    store.dispose()


def test_the_chosen_thumb_is_said_in_words(coffee_jpeg, tmp_path):
    at, store, saved = coffee_saved(coffee_jpeg, tmp_path)
    store.dispose()
    said = lambda: [m.value for m in at.main.markdown if "You said" in m.value]  # noqa: E731
    assert said() == []
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    assert said() == [":red-badge[:material/thumb_down: You said it is wrong]"]
    at.feedback(key=f"feedback_{saved.id}").set_value(1).run()
    assert said() == [":green-badge[:material/thumb_up: You said it is right]"]


def test_matching_classes_come_first_and_unrelated_ones_are_left_out():
    from classifier import labels
    from ui.saving import matching_classes

    names = labels.labels()
    assert matching_classes("crane", names) == ["crane bird", "construction crane"]
    assert matching_classes("CRANE ", names) == ["crane bird", "construction crane"]
    assert matching_classes("lynx", names) == ["lynx"]
    assert matching_classes("cat", names)[:4] == ["tabby cat", "tiger cat", "Persian cat",
                                                 "Siamese cat"]  # fmt: skip
    assert all("cat" in name.casefold() for name in matching_classes("cat", names))
    assert matching_classes("giraffe", names) == []
    assert matching_classes("  ", names) == []


def test_a_typed_name_some_classes_hold_offers_those_classes_first(coffee_jpeg, tmp_path):
    at, store, saved = coffee_saved(coffee_jpeg, tmp_path)
    # As the box sends "crane" typed and Enter pressed (AppTest cannot type into it).
    at.session_state[f"correction_{saved.id}"] = "crane"
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    choice = at.button_group(key=f"correction_choice_{saved.id}")
    assert choice.options == ["crane bird", "construction crane", "“crane”, as I typed it"]
    assert store.get(saved.id).corrected_label is None  # nothing kept before the choice
    choice.set_value("crane bird").run()
    assert store.get(saved.id).corrected_label == "crane bird"
    assert "Saved: wrong, it is crane bird." in [c.value for c in at.main.caption]
    assert at.selectbox(key=f"correction_{saved.id}").value == "crane bird"
    assert not [g for g in at.button_group if g.key == f"correction_choice_{saved.id}"]
    store.dispose()


def test_a_typed_name_can_still_be_kept_as_typed(coffee_jpeg, tmp_path):
    at, store, saved = coffee_saved(coffee_jpeg, tmp_path)
    at.session_state[f"correction_{saved.id}"] = "crane"
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    at.button_group(key=f"correction_choice_{saved.id}").set_value("crane").run()
    assert store.get(saved.id).corrected_label == "crane"
    assert any("“crane” (your own name" in c.value for c in at.main.caption)
    assert not [g for g in at.button_group if g.key == f"correction_choice_{saved.id}"]
    store.dispose()
