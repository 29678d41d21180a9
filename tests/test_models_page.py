"""The app's Models page (`pages/models.py`, `ui/own_models.py`), through AppTest: adding,
trying and removing a model, and classifying with it on the other pages.
"""

from __future__ import annotations

import json

import pytest
from streamlit.navigation.page import calc_hash

from classifier import charts, models, teach
from classifier.images import CROP_FRACTION
from classifier.labels import TopClass
from classifier.models import own
from tests import model_fixtures as mf
from tests import onnx_files
from tests.conftest import photo
from tests.helpers import app_test
from tests.onnx_files import TM_LABELS, desk_things_onnx
from ui.columns import plain

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


# --- In the app (AppTest) -------------------------------------------------------------


def app():
    import streamlit as st

    st.cache_data.clear()
    return app_test(300)


def chart_labels(at, number: int = 0) -> list[str]:
    import pyarrow as pa

    proto = at.get("vega_lite_chart")[number].proto
    return list(pa.ipc.open_stream(proto.datasets[0].data.data).read_all().to_pandas()["label"])


def test_the_models_page_says_when_adding_models_is_turned_off(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_ALLOW_MODEL_UPLOADS", "0")
    at = app().run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert any("Adding models is turned off on this server" in i.value for i in at.info)
    assert not at.get("file_uploader")


def test_a_file_that_is_no_model_gets_its_sentence_on_the_models_page(chelsea_png):
    at = app().run()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="add_model_0").set_value(("cat.zip", chelsea_png, "image/png")).run()
    assert not at.exception
    assert "not a model this app can read" in at.error[0].value
    assert "Add model" not in [b.label for b in at.button]  # nothing to add


def built_in_table(at):
    return at.dataframe[0].value.set_index("name")


def test_measured_latencies_are_there_on_the_next_visit_and_measure_all_times_each_model():
    from ui import resources

    resources.latencies.clear()  # kept for the process: another test may have measured
    at = app().run()
    at.switch_page("pages/models.py").run()
    hidden = {button.key for expander in at.expander for button in expander.button}
    assert {"measure_all", "measure_efficientnet_lite0"}.isdisjoint(hidden)  # in sight
    assert list(at.dataframe[0].value.columns)[:2] == ["model", "latency"]  # also on a phone
    assert built_in_table(at).loc["efficientnet_lite0", "latency"] == "not measured"
    at.button(key="measure_all").click().run()
    assert not at.exception
    [said] = [s.value for s in at.success]
    assert said.startswith("EfficientNet-Lite0: ") and "ms per image on LiteRT" in said
    measured = built_in_table(at).loc["efficientnet_lite0", "latency"]
    assert measured.endswith(" ms")
    assert built_in_table(at).loc["mobilenet", "latency"] == "answered by EfficientNet-Lite0"

    later = app().run()  # another visit
    later.switch_page("pages/models.py").run()
    assert built_in_table(later).loc["efficientnet_lite0", "latency"] == measured
    assert not later.success  # nothing measured on this visit


def test_the_cached_engine_column_is_text_not_checkboxes(lite0):
    at = app().run()
    at.switch_page("pages/models.py").run()
    cached = built_in_table(at)["engine cached"]
    assert cached.loc["efficientnet_lite0"] == "yes"
    assert set(cached) <= {"yes", "–"}


def test_the_try_out_charts_share_axis_ticks_every_20_percent_without_overlap():
    frame = charts.top_k_frame([TopClass("cat", 1, 0.95), TopClass("dog", 2, 0.05)])
    axis = charts.probability_spec(frame)["encoding"]["x"]["axis"]
    assert axis["format"] == "%" and axis["tickCount"] == 5
    assert axis["labelOverlap"] is True and axis["labelSeparation"] > 0


def lite0_zip(tflite: bytes) -> bytes:
    """Teachable Machine's LiteRT export layout around the app's own EfficientNet-Lite0."""
    labels = mf.teachable_machine_labels(tuple(f"class {i}" for i in range(1000)))
    return mf.zip_of({"model.tflite": tflite, "labels.txt": labels})


@pytest.mark.parametrize(
    ("file_name", "name"),
    [
        ("converted_tflite.zip", ""),
        ("converted_tflite_quantized.zip", ""),
        ("converted_keras.zip", ""),
        ("Desk things.zip", "Desk things"),
    ],
)
def test_the_name_is_blank_for_every_teachable_machine_export(lite0_tflite, file_name, name):
    at = app().run()
    at.switch_page("pages/models.py").run()
    upload = (file_name, lite0_zip(lite0_tflite), "application/zip")
    at.file_uploader(key="add_model_0").set_value(upload).run()
    assert not at.exception
    assert at.text_input(key="add_name_0").value == name


def test_after_adding_a_model_the_page_says_where_it_is_picked(lite0_tflite):
    at = app().run()
    at.switch_page("pages/models.py").run()
    upload = ("converted_tflite_quantized.zip", lite0_zip(lite0_tflite), "application/zip")
    at.file_uploader(key="add_model_0").set_value(upload).run()
    at.text_input(key="add_name_0").set_value("Lite0 copy").run()
    next(b for b in at.button if b.label == "Add model").click().run()
    assert not at.exception
    assert "Added Lite0 copy. It is now the model picked on the Classify page." in [
        s.value for s in at.success
    ]
    assert not [t for t in at.markdown if "sidebar" in t.value]
    [link] = at.get("page_link")
    assert link.value == "Classify a photo with it"
    assert link.proto.page_script_hash == calc_hash("classify")  # the page at /classify
    at.switch_page("pages/classify.py").run()
    assert at.sidebar.selectbox(key="model").value == "Lite0 copy"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Animals (Keras)", "Animals (Keras, added)"),
        ("Desk things", "Desk things (added)"),
        ("Smiley :)", "Smiley :) (added)"),
    ],
)
def test_a_model_named_with_parentheses_is_marked_inside_them(name, shown):
    from ui import sidebar

    assert sidebar.model_title(name, {name: "added"}) == shown


@pytest.mark.slow
def test_once_a_download_is_prepared_only_the_download_button_shows():
    from tests.conftest import made_up_examples

    teach.save("Made up", teach.train(made_up_examples(dimensions=1280)))
    at = app().run()
    at.switch_page("pages/models.py").run()
    at.button(key="prepare_download_Made up").click().run()
    assert not at.exception and not at.error
    assert "Prepare a download" not in [b.label for b in at.button]
    [download] = at.get("download_button")
    assert download.proto.label == "Download (Teachable Machine LiteRT zip)"


@pytest.mark.slow
def test_add_a_model_on_the_models_page_then_classify_with_its_own_classes(made):
    at = app().run()
    at.switch_page("pages/models.py").run()
    zip_upload = ("converted_tflite.zip", made["float_zip"], "application/zip")
    at.file_uploader(key="add_model_0").set_value(zip_upload).run()
    assert not at.exception
    assert at.success[0].value.startswith(
        "Teachable Machine zip (model_unquant.tflite): 3 classes, input 224×224 float32"
    )
    assert at.text_input(key="add_name_0").value == ""  # Teachable Machine's file name says nothing
    assert at.selectbox(key="add_scaling_0").value == "minus_one_to_one"  # detected
    at.file_uploader(key="add_test_0").set_value(("cat.jpg", photo("cat"), "image/jpeg")).run()
    assert at.subheader[0].value.startswith("Cat · ")  # the answer before keeping it
    assert models.all_models() == []
    at.text_input(key="add_name_0").set_value("Desk things").run()
    next(b for b in at.button if b.label == "Add model").click().run()
    assert not at.exception
    assert any(s.value.startswith("Added Desk things.") for s in at.success)
    assert at.session_state["kept_model"] == "Desk things"  # picked for the person
    assert "Desk things" in at.dataframe[1].value["name"].tolist()  # under "Your models"

    at.switch_page("pages/classify.py").run()
    assert at.sidebar.selectbox(key="model").value == "Desk things"
    at.file_uploader(key="uploads").set_value(("coffee.jpg", photo("coffee"), "image/jpeg")).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Coffee · ")
    assert chart_labels(at)[0] == "Coffee"
    assert sorted(chart_labels(at)) == sorted(mf.TM_CLASSES)  # top 5 of a 3-class model: 3 bars
    assert any("Added model: Teachable Machine zip" in c.value for c in at.caption)
    (saved,) = own.store().find()
    assert saved.model == "Desk things" and saved.top_k[0].label == "Coffee"
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    offered = [name for name in mf.TM_CLASSES if name != "Coffee"]  # not its own answer
    assert at.selectbox(key=f"correction_{saved.id}").options == offered
    at.selectbox(key=f"correction_{saved.id}").set_value("Cat").run()
    assert own.store().get(saved.id).corrected_label == "Cat"

    at.switch_page("pages/history.py").run()
    assert "Desk things" in at.sidebar.multiselect(key="h_models").options
    at.sidebar.multiselect(key="h_models").set_value(["Desk things"]).run()
    assert not at.exception
    assert at.dataframe[0].value["model"].tolist() == ["Desk things"]


@pytest.mark.slow
def test_removing_a_model_asks_first_and_the_picker_forgets_it(made):
    models.save("Desk things", models.read_model(made["float_zip"]), "minus_one_to_one")
    at = app().run()
    assert "Desk things (added)" in at.sidebar.selectbox(key="model").options
    at.sidebar.selectbox(key="model").set_value("Desk things").run()
    at.switch_page("pages/models.py").run()
    at.button(key="remove_Desk things").click().run()
    assert "Remove Desk things? Its predictions stay in the history." in [
        w.value for w in at.warning
    ]
    assert models.exists("Desk things")  # not yet
    at.button(key="remove_yes_Desk things").click().run()
    assert not at.exception
    assert any(s.value == "Removed Desk things." for s in at.success)
    assert not models.exists("Desk things")
    at.switch_page("pages/classify.py").run()
    assert "Desk things (added)" not in at.sidebar.selectbox(key="model").options
    assert at.sidebar.selectbox(key="model").value == "efficientnet_lite0"  # back to the default


@pytest.mark.slow
def test_a_model_with_10000_classes_works_on_every_page(tmp_path):
    names = [f"class {i:05d}" for i in range(10_000)]
    candidate = models.read_model(mf.many_classes_tflite(10_000), json.dumps(names).encode())
    assert candidate.details["classes"] == 10_000 and candidate.detected_scaling is None
    models.save("Ten thousand", candidate, "zero_to_one")
    at = app().run()
    at.sidebar.selectbox(key="model").set_value("Ten thousand").run()
    at.file_uploader(key="uploads").set_value(
        [("cat.jpg", photo("cat"), "image/jpeg"), ("coffee.jpg", photo("coffee"), "image/jpeg")]
    ).run()
    assert not at.exception
    summary = at.dataframe[0].value
    assert len(summary) == 2 and summary["top-1"].str.startswith("class ").all()
    assert len(chart_labels(at)) == 5
    rows = own.store().find()
    assert len(rows) == 2 and {r.model for r in rows} == {"Ten thousand"}
    at.switch_page("pages/history.py").run()
    at.sidebar.multiselect(key="h_models").set_value(["Ten thousand"]).run()
    at.sidebar.text_input(key="h_label").set_value(rows[0].top_k[0].label).run()
    assert not at.exception
    assert rows[0].top_k[0].label in at.dataframe[0].value["top-1"].tolist()
    exported = own.store().export_csv().decode()
    assert exported.count("Ten thousand") == 2


# --- ONNX files (tests/onnx_files.py) -------------------------------------------------


def upload_onnx(at, file_name: str, data: bytes, labels: bytes | None = TM_LABELS):
    if labels is not None:
        at.file_uploader(key="add_labels_0").set_value(("labels.txt", labels, "text/plain"))
    at.file_uploader(key="add_model_0").set_value((file_name, data, "application/octet-stream"))
    return at.run()


@onnx_files.needs_torch
def test_an_onnx_file_from_pytorch_is_read_tried_and_added_with_its_crop(tmp_path):
    exported = desk_things_onnx(tmp_path / "Desk things.onnx")
    at = app().run()
    at.switch_page("pages/models.py").run()
    upload_onnx(at, "Desk things.onnx", exported.path.read_bytes())
    assert not at.exception and not at.error
    said = at.success[0].value  # the format, whose exporter, and the input's layout
    assert said.startswith("ONNX file from pytorch 2.")
    assert said.endswith(": 3 classes, input 224×224 float32 (NCHW), outputs logits.")
    assert "Classes: Cat, Coffee, Rocket" in [t.value for t in at.text]
    assert at.text_input(key="add_name_0").value == "Desk things"
    assert at.selectbox(key="add_scaling_0").value == "imagenet"
    crop = at.selectbox(key="add_crop_0")
    assert crop.value == CROP_FRACTION
    assert crop.options == [models.CROPS[1.0], models.CROPS[CROP_FRACTION]]
    captions = [c.value for c in at.caption]
    assert [c for c in captions if "torchvision" in c] == [
        "What torchvision and timm models expect, for a model taking channels first; change "
        "either if the model was trained otherwise."
    ]
    assert not any("pictures of any size" in c for c in captions)  # its size is fixed

    at.file_uploader(key="add_test_0").set_value(("coffee.jpg", photo("coffee"), "image/jpeg"))
    at.run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Coffee · ")  # the model's own answer, not kept yet
    assert sorted(chart_labels(at)) == sorted(mf.TM_CLASSES)
    assert models.all_models() == []
    next(b for b in at.button if b.label == "Add model").click().run()
    assert not at.exception
    assert any(s.value.startswith("Added Desk things.") for s in at.success)
    (kept,) = models.all_models()
    assert (kept.name, kept.scaling, kept.details.crop) == ("Desk things", "imagenet", 0.875)
    listed = at.dataframe[1].value.set_index("name").loc["Desk things"]
    assert listed["preprocessing"].endswith("; centre crop 87.5% of the short side")
    assert listed["source"].startswith("ONNX file from pytorch")

    at.switch_page("pages/classify.py").run()
    assert at.sidebar.selectbox(key="model").value == "Desk things"
    at.file_uploader(key="uploads").set_value(("rocket.jpg", photo("rocket"), "image/jpeg")).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Rocket · ")
    assert sorted(chart_labels(at)) == sorted(mf.TM_CLASSES)


@onnx_files.needs_torch
def test_a_model_taking_any_size_says_it_is_given_224_and_keeps_the_crop_picked(tmp_path):
    exported = desk_things_onnx(tmp_path / "any size.onnx", dynamic_size=True)
    at = app().run()
    at.switch_page("pages/models.py").run()
    upload_onnx(at, "any size.onnx", exported.path.read_bytes())
    assert not at.exception and not at.error
    assert "This model takes pictures of any size; it is given 224×224 pictures." in [
        c.value for c in at.caption
    ]
    at.selectbox(key="add_crop_0").set_value(1.0).run()  # trained on whole pictures, say
    next(b for b in at.button if b.label == "Add model").click().run()
    assert not at.exception
    (kept,) = models.all_models()
    assert kept.details.crop == 1.0 and kept.input_size == 224
    assert "centre crop" not in at.dataframe[1].value["preprocessing"][0]


def test_a_zip_of_an_onnx_file_and_its_labels_needs_no_labels_file():
    zipped = onnx_files.zip_with_labels(onnx_files.valid_helper_model(), list(mf.TM_CLASSES))
    at = app().run()
    at.switch_page("pages/models.py").run()
    upload_onnx(at, "classifier.zip", zipped, labels=None)
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("zip (model.onnx) from ")
    assert "input 224×224 float32 (NCHW)" in at.success[0].value
    assert at.selectbox(key="add_crop_0").value == CROP_FRACTION
    at.file_uploader(key="add_test_0").set_value(("cat.jpg", photo("cat"), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert sorted(chart_labels(at)) == sorted(mf.TM_CLASSES)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (
            onnx_files.custom_op_model,
            "This ONNX model uses the custom operation MagicOp of “com.example.custom”, which "
            "needs code of its own; models with custom operations are refused.",
        ),
        (
            lambda: onnx_files.truncated(onnx_files.valid_helper_model()),
            "This ONNX file cannot be read: it is damaged or cut short.",
        ),
        (
            onnx_files.two_inputs_model,
            "This model has 2 input(s) and 1 output(s); an image classifier has one of each.",
        ),
    ],
)
def test_a_refused_onnx_file_shows_its_one_sentence(make, said):
    at = app().run()
    at.switch_page("pages/models.py").run()
    upload_onnx(at, "model.onnx", make())
    assert not at.exception
    [error] = at.error
    assert error.value == plain(said)  # one sentence, the person's file named as plain text
    assert "Add model" not in [b.label for b in at.button]
