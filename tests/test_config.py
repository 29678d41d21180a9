"""Settings: defaults, environment variables, the secrets file, read once per process."""

import pytest

from classifier import config


def test_defaults_need_no_environment(tmp_path):
    settings = config.read_settings({}, secrets=())
    assert settings.max_bytes == 20_000_000
    assert settings.max_pixels == 40_000_000
    assert settings.default_model == "mobilenet_v2"
    assert settings.database_url == f"sqlite:///{config.PROJECT_ROOT / 'data' / 'history.db'}"
    assert 1 <= settings.num_threads <= 4
    assert not settings.offline
    assert settings.max_model_bytes == 100_000_000


def test_the_largest_model_file_is_a_setting_in_bytes():
    settings = config.read_settings({"CLASSIFIER_MAX_MODEL_BYTES": " 5242880 "}, secrets=())
    assert settings.max_model_bytes == 5 * 2**20


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("Yes", True), ("off", False)])
def test_offline_reads_the_same_words_as_the_other_switches(value, offline):
    assert config.read_settings({"CLASSIFIER_OFFLINE": value}, secrets=()).offline is offline


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CLASSIFIER_MAX_BYTES", "20MB", "Expected an integer in the environment variable"),
        ("CLASSIFIER_THREADS", "0", "Expected a positive integer at most 64"),
        ("CLASSIFIER_THREADS", "100000", "Expected a positive integer at most 64"),
        ("CLASSIFIER_MAX_PIXELS", "-5", "Expected a positive integer in the environment variable"),
        ("CLASSIFIER_MAX_MODEL_BYTES", "100MB", "Expected an integer in the environment variable"),
        ("CLASSIFIER_MAX_MODEL_BYTES", "0", "Expected a positive integer in the environment"),
        # int() reads full-width and Arabic-Indic digits too; a setting takes 0-9 only.
        ("CLASSIFIER_MAX_BYTES", "２０", "Expected an integer written with the digits 0-9 in"),
        ("CLASSIFIER_TEACH_MAX_PHOTOS", "٢٠", "Expected an integer written with the digits 0-9"),
        ("CLASSIFIER_OFFLINE", "maybe", r"Expected 1 or 0 \(true or false\) in the environment"),
    ],
)
def test_a_bad_value_names_its_variable(name, value, message):
    with pytest.raises(config.SettingsError, match=message) as raised:
        config.read_settings({name: value}, secrets=())
    assert name in str(raised.value) and value in str(raised.value)


def test_database_url_comes_from_the_environment_then_secrets_then_the_data_dir(tmp_path):
    home, project = tmp_path / "home.toml", tmp_path / "project.toml"
    home.write_text('[connections.history]\nurl = "postgresql://home/db"\n')
    project.write_text('[connections.history]\nurl = "postgresql://project/db"\n')
    env = {"CLASSIFIER_DATA_DIR": str(tmp_path)}
    assert config.read_settings(env, secrets=()).database_url == (
        f"sqlite:///{tmp_path / 'history.db'}"
    )
    assert config.read_settings(env, secrets=(home,)).database_url == "postgresql://home/db"
    # Like Streamlit: the later (project) file overrides the global one.
    assert config.read_settings(env, secrets=(home, project)).database_url == (
        "postgresql://project/db"
    )
    env["CLASSIFIER_DATABASE_URL"] = "sqlite:////elsewhere.db"
    assert config.read_settings(env, secrets=(home, project)).database_url == (
        "sqlite:////elsewhere.db"
    )


def test_a_secrets_file_without_the_history_url_is_passed_over(tmp_path):
    other = tmp_path / "secrets.toml"
    other.write_text('api_key = "x"\n[connections.other]\nurl = "postgresql://other/db"\n')
    settings = config.read_settings({"CLASSIFIER_DATA_DIR": str(tmp_path)}, secrets=(other,))
    assert settings.database_url.startswith("sqlite:///")


def test_settings_are_read_once_until_reset(monkeypatch):
    first = config.get_settings()
    assert config.get_settings() is first
    monkeypatch.setenv("CLASSIFIER_MAX_PIXELS", "1234")  # tests reset the cache on a change
    assert config.get_settings().max_pixels == 1234
    assert config.get_settings() is not first


@pytest.mark.parametrize(
    "text",
    [
        '[connections.history\nurl = "postgresql://x/db"\n',  # not TOML
        'connections.history = "postgresql://x/db"\n',  # a plain key, not a table
        '[connections.history]\nuri = "postgresql://x/db"\n',  # no url
    ],
)
def test_a_broken_secrets_file_closes_the_history_instead_of_using_another(tmp_path, text):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(text)
    settings = config.read_settings({"CLASSIFIER_DATA_DIR": str(tmp_path)}, secrets=(secrets,))
    with pytest.raises(config.SettingsError) as refused:
        settings.history_url()
    assert str(secrets) in str(refused.value)
    assert "no history is shown or saved until it is fixed" in str(refused.value)


def test_a_readable_secrets_file_names_the_history(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[connections.history]\nurl = "postgresql://x/db"\n')
    settings = config.read_settings({"CLASSIFIER_DATA_DIR": str(tmp_path)}, secrets=(secrets,))
    assert settings.history_url() == "postgresql://x/db"
