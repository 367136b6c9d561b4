from pathlib import Path

import pytest

from configuration.settings import Settings, SettingsError, load_settings


def test_defaults_work_offline(tmp_path):
    settings = load_settings(env={}, toml_path=tmp_path / "absent.toml")
    assert settings == Settings()
    assert settings.data_dir == Path("data")
    assert settings.backend == "embedded"
    assert settings.allow_downloads is False
    assert "{{ question }}" in settings.prompt_template


def test_environment_overrides_toml(tmp_path):
    toml = tmp_path / "loupe.toml"
    toml.write_text('top_k = 7\nchunk_words = 90\nbackend = "elasticsearch"\n', encoding="utf-8")
    env = {"LOUPE_TOP_K": "3", "LOUPE_DATA_DIR": str(tmp_path / "d"), "ELASTICSEARCH_URL": "http://es:9200"}
    settings = load_settings(env=env, toml_path=toml)
    assert settings.top_k == 3
    assert settings.chunk_words == 90
    assert settings.backend == "elasticsearch"
    assert settings.elasticsearch_url == "http://es:9200"
    assert settings.data_dir == tmp_path / "d"
    assert settings.store_path == tmp_path / "d" / "store" / "documents.sqlite3"


def test_config_file_chosen_by_environment(tmp_path):
    toml = tmp_path / "other.toml"
    toml.write_text("allow_downloads = true\n", encoding="utf-8")
    assert load_settings(env={"LOUPE_CONFIG": str(toml)}).allow_downloads is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOUPE_TOP_K": "many"}, "top_k must be a int"),
        ({"LOUPE_TOP_K": "0"}, "top_k must be at least 1"),
        ({"LOUPE_BACKEND": "faiss"}, "backend must be one of embedded, elasticsearch"),
        ({"LOUPE_GENERATOR_KIND": "gpt"}, "generator_kind must be one of"),
        ({"LOUPE_CHUNK_OVERLAP_WORDS": "500"}, "chunk_overlap_words must be"),
        ({"LOUPE_ALLOW_DOWNLOADS": "perhaps"}, "allow_downloads must be a bool"),
        ({"LOUPE_GENERATOR_KIND": "openai"}, "LOUPE_GENERATOR_BASE_URL"),
    ],
)
def test_bad_values_are_named(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env=env, toml_path=tmp_path / "absent.toml")


def test_bad_toml_is_reported(tmp_path):
    toml = tmp_path / "loupe.toml"
    toml.write_text("top_k = = 3", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(env={}, toml_path=toml)
    toml.write_text("topk = 3", encoding="utf-8")
    with pytest.raises(SettingsError, match="unknown settings: topk"):
        load_settings(env={}, toml_path=toml)
