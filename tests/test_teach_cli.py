"""`classifier teach`: a model taught from a folder per class of photos, on the command line.

The slow test teaches EfficientNet-Lite0's real features the shipped photos' variations and
drawn classes (`image_folder` in conftest.py) and classifies held-out photos with the model.
"""

from __future__ import annotations

import json

import pytest

from classifier.predict import classify
from tests.conftest import EXAMPLES
from tests.helpers import cli

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


def test_the_command_line_names_what_is_wrong_with_a_folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "only").mkdir(parents=True)
    (folder / "only" / "a.jpg").write_bytes((EXAMPLES / "cat.jpg").read_bytes())
    (folder / "loose.jpg").write_bytes((EXAMPLES / "cat.jpg").read_bytes())
    done = cli("teach", "Mugs", str(folder))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ignored 1 file(s) directly in {folder}: put each class's photos in a folder "
        "named after the class",
        "error: Teach at least 2 classes; there is 1.",
    ]
    missing = cli("teach", "Mugs", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "No such folder" in missing.stderr
    base = cli("teach", "Mugs", str(folder), "--base", "mobilenet_v2")
    assert base.returncode == 1 and "MobileNetV2 cannot be the base here" in base.stderr


@pytest.mark.slow
def test_taught_from_a_folder_per_class_it_classifies_held_out_photos(image_folder):
    root, held_out = image_folder
    done = cli("teach", "Six things", str(root))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("cross-validated accuracy (5 folds): ")
    assert lines[0].endswith("over 48 photos")
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(held_out)
    assert f"skipped {root / 'Plain' / 'notes.txt'}: This file is not a picture" in done.stderr
    assert 'saved Six things: classify with --model "Six things"' in done.stderr

    right = total = 0
    for name, photos in held_out.items():
        for data in photos:
            right += classify(data, "Six things").top1.label == name
            total += 1
    assert right / total >= 0.9, f"{right} of {total} held-out photos right"

    answer = cli("predict", "--model", "Six things", "--json", str(root / "Cat" / "00.jpg"))
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)[0]["top_k"][0]["label"] == "Cat"
    again = cli("teach", "Six things", str(root))
    assert again.returncode == 0 and "retrained Six things" in again.stderr
