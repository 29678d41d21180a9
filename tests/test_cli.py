"""`python -m classifier`: real runs in a subprocess, as a person would type them."""

import json
import subprocess
import sys

import pytest

from classifier import zoo
from tests.conftest import ROOT

CAT_CLASSES = {"tiger cat", "tabby", "Egyptian cat"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "classifier", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, coffee_jpeg):
    folder = tmp_path_factory.mktemp("bad")
    files = {
        "empty": (b"", "empty"),
        "text": (b"just some words\n" * 20, "text"),
        "pdf": (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "PDF"),
        "truncated": (coffee_jpeg[: len(coffee_jpeg) // 3], "incomplete or damaged"),
    }
    written = {}
    for name, (content, expected) in files.items():
        path = folder / f"{name}.jpg"
        path.write_bytes(content)
        written[name] = (path, expected)
    return written


def test_predict_json_on_real_photos(lite0, photo_files):
    done = run_cli(
        "predict", "--model", "efficientnet_lite0", "--json", "--top-k", "3",
        str(photo_files["chelsea"]), str(photo_files["coffee"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    chelsea, coffee = json.loads(done.stdout)
    assert chelsea["file"] == str(photo_files["chelsea"])
    assert chelsea["model"] == "efficientnet_lite0"
    assert len(chelsea["top_k"]) == 3
    assert {entry["label"] for entry in chelsea["top_k"]} & CAT_CLASSES
    assert coffee["top_k"][0] == {
        "label": "espresso",
        "index": 967,
        "probability": pytest.approx(coffee["top_k"][0]["probability"]),
    }
    assert coffee["top_k"][0]["probability"] > 0.9


def test_default_model_falls_back_and_says_so(lite0, photo_files):
    done = run_cli("predict", "--json", str(photo_files["chelsea"]))
    assert done.returncode == 0, done.stderr
    assert "MobileNetV2 is not available here" in done.stderr
    assert "Using EfficientNet-Lite0 instead" in done.stderr
    [entry] = json.loads(done.stdout)
    assert entry["model"] == "efficientnet_lite0"
    assert entry["requested_model"] == "mobilenet_v2"
    assert {c["label"] for c in entry["top_k"][:3]} & CAT_CLASSES


def test_text_output_lists_the_top_classes(lite0, photo_files):
    done = run_cli("predict", "--model", "efficientnet_lite0", str(photo_files["coffee"]))
    assert done.returncode == 0, done.stderr
    assert "espresso" in done.stdout.splitlines()[1]
    assert "EfficientNet-Lite0" in done.stdout


@pytest.mark.parametrize("kind", ["empty", "text", "pdf", "truncated"])
def test_bad_files_fail_with_one_line_and_the_others_still_run(lite0, photo_files, bad_files, kind):
    path, expected = bad_files[kind]
    done = run_cli(
        "predict", "--model", "efficientnet_lite0", "--json", str(path), str(photo_files["coffee"])
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith(str(path))]
    assert expected in line
    bad, good = json.loads(done.stdout)
    assert expected in bad["error"]
    assert good["top_k"][0]["label"] == "espresso"


def test_a_missing_file_is_reported_not_raised(lite0, tmp_path):
    done = run_cli("predict", "--model", "efficientnet_lite0", str(tmp_path / "nope.png"))
    assert done.returncode == 1
    assert "cannot read the file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["predict"],
        ["predict", "--model", "resnet", "x.png"],
        ["predict", "--top-k", "0", "x.png"],
        [],
    ],
)
def test_bad_usage_exits_2(args):
    done = run_cli(*args)
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_models_lists_every_model_with_its_state(lite0):
    done = run_cli("models")
    assert done.returncode == 0, done.stderr
    blocks: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if not line.startswith(" "):
            name = line.split()[0]
            blocks[name] = ""
        blocks[name] += line + "\n"
    assert list(blocks) == list(zoo.MODELS)
    assert "224x224" in blocks["efficientnet_lite0"]
    assert "weights    available" in blocks["efficientnet_lite0"]
    assert "engine     cached: " in blocks["efficientnet_lite0"]
    assert "weights    missing" in blocks["mobilenet_v2"]
    assert "engine     not built yet" in blocks["mobilenet_v2"]
