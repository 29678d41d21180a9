"""A server warms up as it starts: the default model's engine is open before anyone visits,
and a first-ever export is still left to the first visit, whose page says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from benchmarks import server as server_tools
from classifier import models
from tests.conftest import ROOT
from tests.test_runtime_cache import NAME, copy_engine

# In a child process: warm up as a server does, then say what it holds.
WARM = """
import sys
from ui import warm_start
from classifier import models
warm_start._warm()
print(models.is_loaded("efficientnet_lite0"), "ui.results" in sys.modules)
"""


# As a server starts: warm up in the background, if the settings say so.
BEGIN = """
import sys, threading
from ui import warm_start
from classifier import models
warm_start.begin()
started = [t for t in threading.enumerate() if t.name == "warm-start"]
for thread in started:
    thread.join()
# (A wrong setting: models.is_loaded would raise the setting's sentence; nothing was opened.)
print(bool(started) and models.is_loaded("efficientnet_lite0"), "ui.results" in sys.modules)
"""


def open_files(pid: int) -> str:
    """The files a process has mapped into its memory (an open LiteRT engine's among them)."""
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.server
def test_a_started_server_has_the_default_models_engine_open_before_any_visit(lite0, tmp_path):
    engine = models.cached_engine_path(NAME)
    assert engine is not None
    with server_tools.serve(tmp_path) as server:
        waited = 0.0
        while engine.name not in open_files(server.pid) and waited < 60:
            time.sleep(0.25)
            waited += 0.25
        assert engine.name in open_files(server.pid)
        page = httpx.get(server.url, timeout=30)  # and the server still serves its pages
        assert page.status_code == 200


def warm_in_a_child(cache: Path, code: str = WARM, **env: str) -> tuple[str, str]:
    environment = {
        **os.environ,
        "CLASSIFIER_MODEL": NAME,
        "CLASSIFIER_CACHE_DIR": str(cache),
        "CLASSIFIER_DATABASE_URL": f"sqlite:///{cache.parent / 'history.db'}",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=300, check=True,
    )  # fmt: skip
    return done.stdout.strip(), done.stderr


def test_warming_up_opens_a_cached_engine_and_imports_the_pages(lite0, tmp_path):
    copy_engine(lite0, tmp_path / "cache")
    said, _ = warm_in_a_child(tmp_path / "cache")
    assert said == "True True"


@pytest.mark.parametrize(
    ("setting", "warmed"),
    [("", "True True"), ("on", "True True"), ("off", "False False"), ("0", "False False"),
     ("maybe", "False False")],  # a wrong value: the pages say so; no warm start meanwhile
)  # fmt: skip
def test_the_warm_start_setting_turns_it_on_or_off(lite0, tmp_path, setting, warmed):
    copy_engine(lite0, tmp_path / "cache")
    said, _ = warm_in_a_child(tmp_path / "cache", BEGIN, CLASSIFIER_WARM_START=setting)
    assert said == warmed


def test_warming_up_leaves_a_first_ever_export_to_the_first_visit(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    said, errors = warm_in_a_child(cache)
    assert said == "False True"
    assert list(cache.iterdir()) == []  # nothing exported behind the first visitor's back
    assert "could not warm up" not in errors


def test_warming_up_leaves_a_damaged_engine_file_to_the_first_visit(lite0, tmp_path):
    """The first visit repairs it and says so ("... was damaged and has been rebuilt"), a
    notice told once per process: the warm start must not take it."""
    engine = copy_engine(lite0, tmp_path / "cache")
    damaged = engine.read_bytes()[: engine.stat().st_size // 3]
    engine.write_bytes(damaged)
    said, errors = warm_in_a_child(tmp_path / "cache")
    assert said == "False True"
    assert engine.read_bytes() == damaged  # not set aside, not rebuilt
    assert "could not warm up" not in errors


def test_warming_up_with_a_bad_setting_stays_quiet_for_the_page_to_say(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    said, errors = warm_in_a_child(cache, CLASSIFIER_MODEL="no_such_model")
    assert said == "False True"
    assert "could not warm up" not in errors
