"""The command line, run in this process through `classifier.cli.main` as a person would type it.

Only `test_python_m_classifier_runs` starts a real `python -m classifier`: every other
test would otherwise pay for importing TensorFlow and LiteRT afresh.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from classifier import files, models
from classifier.cli import EXAMPLES, build_parser, main
from classifier.history import HistoryStore
from classifier.runtime import cache
from tests import model_fixtures as mf
from tests import onnx_files
from tests.conftest import EXAMPLES as EXAMPLES_FOLDER
from tests.conftest import PHOTOS, ROOT
from tests.helpers import CAT_CLASSES, cli, encode
from tests.onnx_files import TM_LABELS, desk_things_onnx, needs_torch, onnx_pictures
from tests.test_images import patch_png_size


@dataclass(frozen=True)
class Run:
    """What a person would see: the exit status and both output streams."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys):
    """Return a function that runs the command line with these arguments."""

    def run(*args: str) -> Run:
        capsys.readouterr()  # drop whatever the test printed before
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse exits on bad usage, as `python -m` would
            status = exc.code
        out, err = capsys.readouterr()
        return Run(status, out, err)

    return run


def set_env(monkeypatch, name: str, value: str | None) -> None:
    """Set (or, given None, remove) an environment variable; conftest re-reads the settings."""
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, coffee_jpeg):
    folder = tmp_path_factory.mktemp("bad")
    small_png = encode(np.zeros((10, 10, 3), np.uint8))
    files = {
        "empty": (b"", "empty"),
        "text": (b"just some words\n" * 20, "text"),
        "pdf": (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "PDF"),
        "truncated": (coffee_jpeg[: len(coffee_jpeg) // 3], "incomplete or damaged"),
        "oversize": (coffee_jpeg + b"\0" * 50_000, "the limit is"),
        "bomb": (patch_png_size(small_png, 50_000, 50_000), "too many pixels"),
        "absurd": (encode(np.zeros((1, 5000, 3), np.uint8)), "5,000"),
    }
    written = {}
    for name, (content, expected) in files.items():
        path = folder / f"{name}.jpg"
        path.write_bytes(content)
        written[name] = (path, expected)
    return written


# The console script installed with this interpreter (a virtual environment's own, which
# need not be on PATH), not whichever `classifier` PATH finds first.
INSTALLED_COMMAND = str(Path(sys.executable).with_name("classifier"))


@pytest.mark.parametrize("command", [[sys.executable, "-m", "classifier"], [INSTALLED_COMMAND]])
def test_the_installed_command_runs_from_any_folder(lite0, photo_files, tmp_path, command):
    """The real processes: the entry points, their imports and their exit status."""
    done = subprocess.run(
        [*command, "predict", "--json", str(photo_files["chelsea"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: the README's install command installs it
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(done.stdout)
    assert entry["file"] == str(photo_files["chelsea"])
    assert entry["top_k"]
    assert "XNNPACK" not in done.stderr  # LiteRT's start-up chatter stays off the terminal


def test_predict_json_on_real_photos(lite0, photo_files, run_cli):
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


@pytest.fixture
def warm_cache(tmp_path, lite0, monkeypatch) -> Path:
    """A cache folder of this test's own, with EfficientNet-Lite0's engine in it already (so
    nothing is prepared), as CLASSIFIER_CACHE_DIR here and in the processes started."""
    folder = tmp_path / "cache"
    folder.mkdir()
    engine = models.cached_engine_path("efficientnet_lite0")
    for path in (engine, cache.checksum_path(engine)):
        shutil.copy(path, folder / path.name)
    monkeypatch.setenv("CLASSIFIER_CACHE_DIR", str(folder))
    return folder


def test_default_model_falls_back_and_says_so_once_per_cache(warm_cache, photo_files):
    """Two real runs sharing a cache: the note on stderr the first time only; stdout is JSON."""
    first, second = (cli("predict", "--json", str(photo_files["chelsea"])) for _ in range(2))
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [
        "note: MobileNetV2 is not available here: its ImageNet weights are not in the Keras "
        "cache and cannot be downloaded: downloads are turned off (CLASSIFIER_OFFLINE is set). "
        "Using EfficientNet-Lite0 instead."
    ]
    assert second.stderr == ""
    for done in (first, second):  # the data keeps saying it, every time
        [entry] = json.loads(done.stdout)
        assert entry["model"] == "efficientnet_lite0"
        assert entry["requested_model"] == "mobilenet_v2"
        assert "Using EfficientNet-Lite0 instead" in entry["notice"]
        assert {c["label"] for c in entry["top_k"][:3]} & CAT_CLASSES


def test_quiet_says_no_note_and_leaves_it_to_be_said(warm_cache, photo_files, run_cli):
    quiet = run_cli("predict", "--quiet", str(photo_files["chelsea"]))
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "(EfficientNet-Lite0, " in quiet.stdout
    told = run_cli("predict", str(photo_files["chelsea"]))
    assert "note: MobileNetV2 is not available here" in told.stderr


def test_help_ends_with_examples():
    done = cli("predict", "--help")
    assert done.returncode == 0
    examples = done.stdout.split("\nexamples:\n", 1)[1]
    assert "  classifier predict photo.jpg other.png\n" in examples
    assert "cat photo.jpg | classifier predict -" in examples


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_every_help_example_is_a_command_that_parses(command, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exited:  # what `classifier [COMMAND] --help` prints
        parser.parse_args([*([] if command == "classifier" else [command]), "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.endswith(f"\nexamples:\n{EXAMPLES[command]}\n")
    for line in EXAMPLES[command].splitlines():
        words = shlex.split(line.split("|")[-1], comments=True)  # after a pipe, before a #
        assert words[0] == "classifier", line
        if words[-1] == "--help":
            continue  # it prints the help, as above
        assert parser.parse_args(words[1:]).command == words[1], line


def test_native_log_lines_never_reach_the_terminal():
    """What TensorFlow's C++ code writes on file descriptor 2 before anything can silence it."""
    native = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796421908.988117    8339 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1796421913.793233    8339 cuda_platform.cc:52] failed call to cuInit: X",
        "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] No",
        "a C++ error of its own",
        "E0000 00:00:1796421913.793233    8339 interpreter.cc:52] an error that is not a GPU's",
    ]
    code = (
        "import os, sys\n"
        "from classifier.terminal import native_logs_kept_off\n"
        "with native_logs_kept_off():\n"
        "    print('before', file=sys.stderr)\n"
        "    os.write(2, sys.stdin.buffer.read())\n"
        "    print('after', file=sys.stderr)\n"
        "print('restored', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input="\n".join(native) + "\n",
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert sorted(lines) == sorted(
        ["a C++ error of its own", native[-1], "before", "after", "restored"]
    )
    assert lines[-1] == "restored"  # the filter has passed everything on when the block ends


def test_a_crash_inside_the_filter_still_says_its_last_lines():
    """A fatal check that aborts the process: its line reaches the terminal all the same."""
    fatal = "F0000 00:00:1796421913.793233    8339 check.cc:52] Check failed: shape"
    code = (
        "import os, sys\n"
        "from classifier.terminal import native_logs_kept_off\n"
        "with native_logs_kept_off():\n"
        f"    os.write(2, {(fatal + chr(10)).encode()!r})\n"
        "    os.abort()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode != 0
    assert fatal in done.stderr.splitlines(), done.stderr


@pytest.mark.slow
def test_a_first_run_says_it_prepares_the_model_and_tensorflow_stays_quiet(photo_files, tmp_path):
    """The real command on a machine where nothing is prepared yet: TensorFlow builds and
    exports the model, and only the person's lines reach stderr; stdout stays JSON."""
    env = {**os.environ, "CLASSIFIER_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # as a person runs it
    command = [sys.executable, "-m", "classifier", "predict", "--json"]
    first, second = (
        subprocess.run([*command, str(photo_files["coffee"])], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=600)
        for _ in range(2)
    )  # fmt: skip
    assert first.returncode == second.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert lines[0] == "Preparing EfficientNet-Lite0 for this machine (first run only)…"
    assert re.fullmatch(r"EfficientNet-Lite0 ready in \d+ s; later runs start at once", lines[-1])
    assert any(line.startswith("note: MobileNetV2 is not available here") for line in lines)
    for native in ("oneDNN", "cuInit", "cuda", "absl", "XNNPACK"):
        assert native not in first.stderr
    assert second.stderr == ""  # prepared, and the note was said
    for done in (first, second):
        [entry] = json.loads(done.stdout)
        assert entry["top_k"][0]["label"] == "espresso"


def test_text_output_lists_the_top_classes(lite0, photo_files, run_cli):
    done = run_cli("predict", "--model", "efficientnet_lite0", str(photo_files["coffee"]))
    assert done.returncode == 0, done.stderr
    assert "espresso" in done.stdout.splitlines()[1]
    assert "EfficientNet-Lite0" in done.stdout


@pytest.mark.parametrize(
    "kind", ["empty", "text", "pdf", "truncated", "oversize", "bomb", "absurd"]
)
def test_bad_files_fail_with_one_line_and_the_others_still_run(
    lite0, photo_files, bad_files, kind, monkeypatch, run_cli
):
    # The coffee photo is about 80 KB: a 100 KB limit passes it and refuses the padded copy.
    set_env(monkeypatch, "CLASSIFIER_MAX_BYTES", str(100_000))
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


def test_a_missing_file_is_reported_not_raised(lite0, tmp_path, run_cli):
    done = run_cli("predict", "--model", "efficientnet_lite0", str(tmp_path / "nope.png"))
    assert done.returncode == 1
    assert "cannot read the file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["predict"],
        ["predict", "--top-k", "0", "x.png"],
        [],
    ],
)
def test_bad_usage_exits_2(args, run_cli):
    done = run_cli(*args)
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_an_unknown_model_exits_2_naming_the_models(run_cli, tmp_path, monkeypatch):
    set_env(monkeypatch, "CLASSIFIER_DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    done = run_cli("predict", "--model", "resnet", "x.png")
    assert done.returncode == 2
    assert "mobilenet_v2" in done.stderr and "or an added model" in done.stderr
    assert "Received: 'resnet'" in done.stderr


def test_a_mistyped_setting_is_one_line_not_a_traceback(monkeypatch, run_cli):
    set_env(monkeypatch, "CLASSIFIER_THREADS", "two")
    done = run_cli("models")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: Expected an integer in the environment variable CLASSIFIER_THREADS. Received: 'two'"
    )


def test_models_lists_every_model_with_its_state(lite0, run_cli):
    done = run_cli("models")
    assert done.returncode == 0, done.stderr
    blocks: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if not line.startswith(" "):
            name = line.split()[0]
            blocks[name] = ""
        blocks[name] += line + "\n"
    assert list(blocks) == list(models.MODELS)
    assert "224x224" in blocks["efficientnet_lite0"]
    assert "weights    available" in blocks["efficientnet_lite0"]
    assert "engine     cached: " in blocks["efficientnet_lite0"]
    assert "weights    missing" in blocks["mobilenet_v2"]
    assert "engine     not built yet" in blocks["mobilenet_v2"]


# --- `models add` with ONNX files (tests/onnx_files.py; the Models page's own are in
# tests/test_models_page.py, the other formats' in tests/test_own_models.py) -------------


def onnx_and_labels(folder: Path, data: bytes) -> tuple[Path, Path]:
    """Write an ONNX file and a labels file naming mf.TM_CLASSES; return both paths."""
    model, labels = folder / "desk.onnx", folder / "desk.txt"
    model.write_bytes(data)
    labels.write_bytes(TM_LABELS)
    return model, labels


@needs_torch
@pytest.mark.usefixtures("own_database")
def test_models_add_keeps_an_onnx_file_that_predict_then_answers_with(tmp_path, run_cli):
    exported = desk_things_onnx(tmp_path / "exported.onnx")
    model, labels = onnx_and_labels(tmp_path, exported.path.read_bytes())
    done = run_cli("models", "add", "Desk ONNX", str(model), "--labels", str(labels))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "added Desk ONNX: 3 classes, 224x224, imagenet, centre crop 87.5%"
    )
    assert "any size" not in done.stderr  # its size is fixed
    listed = run_cli("models").stdout
    assert "Desk ONNX  (added " in listed and "3: Cat, Coffee, Rocket" in listed
    assert "source     ONNX file from pytorch 2." in listed
    assert "per channel; centre crop 87.5% of the short side" in listed

    photos = [str(EXAMPLES_FOLDER / f"{name}.jpg") for name in PHOTOS]
    done = run_cli("predict", "--model", "Desk ONNX", "--json", *photos)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert [a["top_k"][0]["label"] for a in answers] == list(mf.TM_CLASSES)
    assert all(sorted(e["label"] for e in a["top_k"]) == sorted(mf.TM_CLASSES) for a in answers)
    torch_says = exported.run(onnx_pictures())  # PyTorch's own answer, on the same crop
    for answer, expected in zip(answers, torch_says, strict=True):
        for entry in answer["top_k"]:
            index = mf.TM_CLASSES.index(entry["label"])
            assert entry["probability"] == pytest.approx(expected[index], abs=1e-4)


@needs_torch
@pytest.mark.usefixtures("own_database")
def test_models_add_says_a_model_of_any_size_is_given_224_and_takes_the_crop_asked(
    tmp_path, run_cli
):
    exported = desk_things_onnx(tmp_path / "exported.onnx", dynamic_size=True)
    model, labels = onnx_and_labels(tmp_path, exported.path.read_bytes())
    done = run_cli(
        "models", "add", "Any size", str(model), "--labels", str(labels), "--crop", "whole"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-2:] == [
        "note: this model takes pictures of any size; it is given 224x224 pictures",
        "added Any size: 3 classes, 224x224, imagenet, whole picture",
    ]
    (kept,) = models.all_models()
    assert kept.details.crop == 1.0 and "crop" not in kept.preprocessing


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
@pytest.mark.usefixtures("own_database")
def test_models_add_refuses_an_onnx_file_in_one_sentence(tmp_path, run_cli, make, said):
    model, labels = onnx_and_labels(tmp_path, make())
    done = run_cli("models", "add", "Refused", str(model), "--labels", str(labels))
    assert done.returncode == 1
    assert done.stderr == f"reading {model} ...\nerror: {said}\n"  # no traceback
    assert done.stdout == "" and models.all_models() == []


def test_an_onnx_file_and_its_crop_are_in_the_help(run_cli):
    add = " ".join(run_cli("models", "add", "--help").stdout.split())  # argparse wraps lines
    assert ".onnx as torch.onnx.export writes it" in add and "--crop {whole,centre}" in add
    assert "classifier models add Flowers flowers.onnx" in run_cli("models", "--help").stdout


@pytest.fixture
def history_url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli-history.db'}"
    set_env(monkeypatch, "CLASSIFIER_DATABASE_URL", url)
    return url


def test_predict_save_records_only_the_successes(
    lite0, photo_files, bad_files, history_url, run_cli
):
    done = run_cli(
        "predict", "--model", "efficientnet_lite0", "--save",
        str(photo_files["coffee"]), str(bad_files["pdf"][0]), str(photo_files["chelsea"]),
    )  # fmt: skip
    assert done.returncode == 1  # one file failed
    store = HistoryStore(history_url)
    rows = store.find(sort="oldest", limit=None)
    store.dispose()
    assert [(r.file_name, r.model) for r in rows] == [
        ("coffee.jpg", "efficientnet_lite0"),
        ("chelsea.png", "efficientnet_lite0"),
    ]
    assert rows[0].top1_label == "espresso"
    assert rows[0].thumbnail[8:12] == b"WEBP"


def test_history_export_and_clear(lite0, photo_files, history_url, tmp_path, run_cli):
    assert run_cli("predict", "--model", "efficientnet_lite0", "--save",
                   str(photo_files["coffee"])).returncode == 0  # fmt: skip

    csv_out = run_cli("history", "export", "--all", "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    header, row = csv_out.stdout.splitlines()
    assert header.startswith("id,public_id,created_at,file_name,")
    assert "coffee.jpg" in row and "espresso" in row

    target = tmp_path / "out.json"
    done = run_cli("history", "export", "--all", "--format", "json", "--output", str(target))
    assert done.returncode == 0
    [entry] = json.loads(target.read_text(encoding="utf-8"))
    assert entry["file_name"] == "coffee.jpg"
    assert entry["top1_label"] == "espresso"

    refused = run_cli("history", "clear", "--all")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert len(json.loads(run_cli("history", "export", "--all", "--format", "json").stdout)) == 1

    assert run_cli("history", "clear", "--all", "--yes").returncode == 0
    assert json.loads(run_cli("history", "export", "--all", "--format", "json").stdout) == []


def test_history_export_and_clear_act_on_one_owner_or_on_all_only_when_told(history_url, run_cli):
    from classifier.history import owners
    from tests.helpers import make_record

    alice = owners.owner_id("https://issuer.example", "alice")
    bob = owners.owner_id("https://issuer.example", "bob")
    store = HistoryStore(history_url)
    for who, name in ((alice, "alice.jpg"), (bob, "bob.jpg"), (None, "nobody.jpg")):
        scoped = store if who is None else store.scoped(owners.Scope.own(who))
        scoped.add(make_record(file_name=name))
    owners.remember(store, alice, "alice@example.com", "Alice")
    owners.remember(store, bob, "bob@example.com", "Bob")

    def exported(*whose: str) -> list[str]:
        done = run_cli("history", "export", *whose, "--format", "json")
        assert done.returncode == 0, done.stderr
        return sorted(row["file_name"] for row in json.loads(done.stdout))

    try:
        unsaid = run_cli("history", "export")
        assert unsaid.returncode == 2
        assert "one of the arguments --owner --all is required" in unsaid.stderr
        assert exported("--owner", "alice@example.com") == ["alice.jpg"]
        assert exported("--owner", bob) == ["bob.jpg"]
        assert exported("--all") == ["alice.jpg", "bob.jpg", "nobody.jpg"]
        unknown = run_cli("history", "export", "--owner", "carol@example.com")
        assert unknown.returncode == 1
        assert "Nobody signed in here as 'carol@example.com'" in unknown.stderr
        assert run_cli("history", "clear", "--owner", "alice@example.com").returncode == 2

        cleared = run_cli("history", "clear", "--owner", "alice@example.com", "--yes")

        assert cleared.returncode == 0, cleared.stderr
        assert "deleted 1 prediction(s)" in cleared.stderr
        assert exported("--all") == ["bob.jpg", "nobody.jpg"]
        people = run_cli("history", "people").stdout.splitlines()
        assert [line.split("\t")[:3] for line in people] == [
            [bob, "bob@example.com", "Bob"],
            [alice, "alice@example.com", "Alice"],
        ]
    finally:
        store.dispose()


def test_history_uses_the_secrets_file_like_the_app(tmp_path, monkeypatch, run_cli):
    url = f"sqlite:///{tmp_path / 'from-secrets.db'}"
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(f'[connections.history]\nurl = "{url}"\n')
    monkeypatch.chdir(tmp_path)  # where `python -m classifier` would be typed
    set_env(monkeypatch, "CLASSIFIER_DATABASE_URL", None)
    done = run_cli("history", "clear", "--all", "--yes")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-secrets.db").is_file()


@pytest.mark.parametrize(
    "command",
    [("history", "export", "--all", "--format", "json"), ("predict", "--save", "photo.jpg")],
)
def test_a_broken_secrets_file_refuses_the_history(run_cli, broken_secrets, tmp_path,
                                                   monkeypatch, command):  # fmt: skip
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path))
    result = run_cli(*command)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: In the secrets file {broken_secrets}")
    assert "no history is shown or saved until it is fixed" in result.stderr
    assert not (tmp_path / "history.db").exists()


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("postgresql://user:p@ss:w0rd@127.0.0.1:5432/db", ("p@ss", "w0rd")),
        ("postgresql://u:PW123@x@127.0.0.1:1/db", ("PW123", "x@127")),
        ("postgresql://u:x@PW123@127.0.0.1:1/db", ("PW123", "x@PW")),
        ("postgresql://user:s3cr%40t%3Aw0rd@127.0.0.1:1/db", ("s3cr", "w0rd")),  # refused
        ("mysql://user:s3cret@127.0.0.1:1/db", ("s3cret",)),
    ],
)
def test_history_export_never_prints_the_database_password(url, secrets, monkeypatch, run_cli):
    import socket

    real_lookup = socket.getaddrinfo

    def local_only(host, *args, **kwargs):  # no URL here may reach beyond this machine
        if host in (None, "127.0.0.1", "::1", "localhost"):
            return real_lookup(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (no lookups in tests)")

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    set_env(monkeypatch, "CLASSIFIER_DATABASE_URL", url)

    done = run_cli("history", "export", "--all")

    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()  # no "Background on this error" link after it
    assert "sqlalche.me" not in done.stderr
    assert line.startswith("error: The history database ")
    assert [secret for secret in secrets if secret in done.stderr] == []
    if "%40" in url:
        assert "cannot be reached (OperationalError: " in line
        assert "Connection refused" in line
    else:
        assert line.startswith(
            "error: The history database URL is malformed; check CLASSIFIER_DATABASE_URL "
            "or [connections.history] url in the secrets."
        )


@pytest.mark.parametrize("url", ["nonsense://", "mysql://x", "postgresql://u@h:port/db"])
def test_predict_save_with_an_unusable_url_ends_with_one_line(
    url, lite0, photo_files, monkeypatch, run_cli
):
    set_env(monkeypatch, "CLASSIFIER_DATABASE_URL", url)

    done = run_cli("predict", "--model", "efficientnet_lite0", "--save", str(photo_files["coffee"]))

    assert done.returncode == 1  # like any database that cannot be used (exit 2 is usage)
    assert "espresso" in done.stdout  # the predictions are printed first
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "error: The history database URL is malformed; check CLASSIFIER_DATABASE_URL or "
        "[connections.history] url in the secrets. "
        + (
            "Expected a sqlite:/// or postgresql:// URL."
            if "port" not in url
            else "Special characters in its password must be percent-encoded "
            "(@ as %40, : as %3A, / as %2F)."
        )
    ]


def test_history_export_to_a_full_disk_keeps_the_previous_file(
    history_url, tmp_path, monkeypatch, run_cli
):
    import errno
    import os

    HistoryStore(history_url).dispose()
    folder = tmp_path / "exports"
    folder.mkdir()
    target = folder / "history.csv"
    target.write_bytes(b"yesterday's export\n")

    def disk_fills_up(descriptor, data):
        os.write(descriptor, data[:5])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    write_all = files._write_all
    monkeypatch.setattr(files, "_write_all", disk_fills_up)
    done = run_cli("history", "export", "--all", "--output", str(target))

    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: cannot write {target}: No space left on device"]
    assert target.read_bytes() == b"yesterday's export\n"
    assert list(folder.iterdir()) == [target]  # no temporary file left behind

    monkeypatch.setattr(files, "_write_all", write_all)  # the disk has room again
    assert run_cli("history", "export", "--all", "--output", str(target)).returncode == 0
    assert target.read_bytes().startswith(b"id,public_id,created_at,file_name,")
    assert list(folder.iterdir()) == [target]


def test_history_export_reads_a_history_in_a_read_only_folder(
    history_url, tmp_path, monkeypatch, run_cli
):
    """Simulated: tests run as root, whom chmod does not stop (see test_history_store)."""
    import sqlite3

    from classifier.history import connecting
    from tests.helpers import make_record

    store = HistoryStore(history_url)
    store.add(make_record(file_name="kept.jpg"))
    store.dispose()

    def sqlite_error(code, message):
        def fail(*args):
            error = sqlite3.OperationalError(message)
            error.sqlite_errorcode = code
            raise error

        return fail

    # What SQLite says to a user other than root who cannot create the -wal and -shm files.
    no_side_files = sqlite_error(
        sqlite3.SQLITE_READONLY_DIRECTORY, "attempt to write a readonly database"
    )
    monkeypatch.setattr(connecting, "_switch_to_wal", no_side_files)  # any read-write open fails
    monkeypatch.setattr(connecting, "_is_writable", lambda path: not path.is_relative_to(tmp_path))
    assert run_cli("history", "clear", "--all", "--yes").stderr.startswith(
        f"error: The history database folder {tmp_path} is read-only; predictions cannot be saved"
    )

    done = run_cli("history", "export", "--all", "--format", "json")

    assert done.returncode == 0, done.stderr
    assert [row["file_name"] for row in json.loads(done.stdout)] == ["kept.jpg"]

    cannot_open = sqlite_error(sqlite3.SQLITE_CANTOPEN, "unable to open database file")
    monkeypatch.setattr(connecting, "_sqlite_connect", cannot_open)  # not even read-only
    done = run_cli("history", "export", "--all", "--format", "json")

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: The history database folder {tmp_path} is read-only; the database "
        f"{tmp_path / 'cli-history.db'} cannot be opened, even read-only (unable to open "
        "database file). Make it writable for the app, or check CLASSIFIER_DATABASE_URL or "
        "[connections.history] url in the secrets."
    ]


def test_a_picture_from_standard_input(run_cli, lite0, coffee_jpeg, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(coffee_jpeg)))
    done = run_cli("predict", "--model", "efficientnet_lite0", "--json", "-")
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(done.stdout)
    assert (entry["file"], entry["top_k"][0]["label"]) == ("-", "espresso")


def test_a_folder_is_searched_for_pictures(run_cli, lite0, photo_files, tmp_path):
    folder = tmp_path / "album"
    (folder / "inner").mkdir(parents=True)
    (folder / "coffee.jpg").write_bytes(photo_files["coffee"].read_bytes())
    (folder / "inner" / "chelsea.png").write_bytes(photo_files["chelsea"].read_bytes())
    (folder / "notes.txt").write_text("not a picture")
    flat = run_cli("predict", "--model", "efficientnet_lite0", "--json", str(folder))
    assert [Path(e["file"]).name for e in json.loads(flat.stdout)] == ["coffee.jpg"]
    deep = run_cli("predict", "--model", "efficientnet_lite0", "--json", "-r", str(folder))
    assert [Path(e["file"]).name for e in json.loads(deep.stdout)] == ["coffee.jpg", "chelsea.png"]


def test_an_empty_folder_says_so(run_cli, tmp_path):
    done = run_cli("predict", str(tmp_path))
    assert done.returncode == 1
    assert f"{tmp_path}: no pictures in this folder (add --recursive" in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("history",), "the following arguments are required: ACTION"),
        (("predict", "--top-k", "0", "x.jpg"), "argument --top-k: expected 1 to 10,000"),
    ],
)
def test_usage_errors_use_the_names_people_type(run_cli, argv, message):
    done = run_cli(*argv)
    assert done.returncode == 2
    assert message in done.stderr


def test_an_unknown_default_model_names_its_variable(run_cli, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_MODEL", "resnet")
    done = run_cli("models")
    assert done.returncode == 2
    assert "environment variable CLASSIFIER_MODEL. Received: 'resnet'" in done.stderr


def test_a_plain_predict_imports_only_what_it_uses(lite0, photo_files):
    code = (
        "import sys\n"
        "from classifier import cli\n"
        "status = cli.main(['predict', '--model', 'efficientnet_lite0', sys.argv[1]])\n"
        "heavy = [m for m in ('sqlalchemy', 'pandas', 'tensorflow', 'keras', 'streamlit')"
        " if m in sys.modules]\n"
        "print('heavy:', heavy, 'status:', status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(photo_files["coffee"])],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "espresso" in done.stdout
    assert "heavy: [] status: 0" in done.stdout
    assert "XNNPACK" not in done.stderr


def test_ctrl_c_during_predict_save_keeps_and_says_what_was_printed(tmp_path, coffee_jpeg, lite0):
    import os
    import signal

    folder = tmp_path / "photos"
    folder.mkdir()
    for number in range(400):
        (folder / f"coffee-{number:03}.jpg").write_bytes(coffee_jpeg)
    database = tmp_path / "history.db"
    env = {**os.environ, "CLASSIFIER_DATABASE_URL": f"sqlite:///{database}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "classifier", "predict", "--save", "--model",
         "efficientnet_lite0", str(folder)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    printed = 0
    for line in process.stdout:
        printed += line.startswith(str(folder))
        if printed == 40:
            break
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=120)
    printed += sum(line.startswith(str(folder)) for line in rest.splitlines())

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    [said] = [line for line in stderr.splitlines() if line.startswith("saved ")]
    store = HistoryStore(f"sqlite:///{database}")
    assert said == f"saved {store.count()} prediction(s) to the history"
    assert 40 <= printed <= store.count() < 400  # every answer printed is saved
    store.dispose()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [(["history", "clear", "--all", "--yes"], "history clear"),
     (["models", "remove", "x"], "models remove"), (["history", "people"], "history people")],
)  # fmt: skip
def test_a_deployment_in_the_environment_stops_commands_that_act_only_here(
    monkeypatch, capsys, arguments, named
):
    monkeypatch.setenv("CLASSIFIER_SERVER", "https://example.invalid")
    assert main(arguments) == 2
    assert capsys.readouterr().err == (
        f"error: CLASSIFIER_SERVER is set, but `{named}` acts only on this computer; "
        "unset CLASSIFIER_SERVER to run it here\n"
    )
