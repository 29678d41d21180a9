"""The repository keeps its promises to a new user: commands, CI, config, secrets."""

import re
import tomllib

from classifier.config import DEFAULT_MAX_BYTES
from tests.conftest import ROOT


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_readme_has_exactly_two_setup_commands():
    app, tests = quick_start_commands()
    venv = "python3 -m venv .venv && . .venv/bin/activate && "  # a fresh machine's first step
    assert app == f"{venv}pip install -r requirements.txt && streamlit run streamlit_app.py"
    assert tests.startswith(f"{venv}pip install -r requirements-dev.txt && ")


def test_ci_runs_the_readmes_test_command():
    _, tests = quick_start_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci_lines


def test_readme_screenshot_exists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert (ROOT / image).is_file(), image


def test_upload_limit_lets_the_app_explain_oversized_files():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    # Above the library's limit, so an oversized file reaches the app and gets its sentence.
    assert config["server"]["maxUploadSize"] * 2**20 > DEFAULT_MAX_BYTES
    assert config["browser"]["gatherUsageStats"] is False


def test_the_server_does_not_watch_its_source_files():
    # The watcher walks every imported module at each new session's first run: about a fifth
    # of the server's work with 16 visitors arriving at once. README says how to turn it on.
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["fileWatcherType"] == "none"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert (
        "streamlit run streamlit_app.py --server.fileWatcherType auto --server.runOnSave true"
        in readme
    )


def test_both_themes_exist_so_the_light_dark_choice_stays():
    theme = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))[
        "theme"
    ]
    assert set(theme) == {"light", "dark"}  # a bare colour in [theme] removes the choice


def test_secrets_are_ignored_and_an_example_ships():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".streamlit/secrets.toml" in ignored
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.toml.example").read_text())
    assert example["connections"]["history"]["url"].startswith("postgresql://")


def test_requirements_use_tensorflow_cpu_on_linux_and_markers_elsewhere():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("tensorflow-cpu") and 'sys_platform == "linux"' in d for d in deps)
    assert any(d.startswith("tensorflow>=") and 'sys_platform != "linux"' in d for d in deps)


def test_requirements_install_the_project_itself():
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert "-e ." in lines  # so `classifier` and `python -m classifier` work from anywhere
