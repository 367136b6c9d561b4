"""The Streamlit app, driven through AppTest on a data directory with the demo corpus."""

from __future__ import annotations

import pytest

from tests.conftest import run_app

pytestmark = pytest.mark.slow


@pytest.fixture
def app(demo_data_dir, monkeypatch):
    return run_app(monkeypatch, demo_data_dir, LOUPE_GENERATOR_KIND="transformers",
                   LOUPE_GENERATOR_MODEL=str(demo_data_dir / "no-such-model"))


def test_ask_shows_answer_passages_and_fallback(app):
    assert any("extractive answerer" in w.value for w in app.sidebar.warning)
    app.text_input(key="ask_question").input("Which GPU was used for training?")
    app.multiselect(key="ask_scope").select("sonar_fish_counting")
    app.button[0].click().run()
    assert not app.exception
    html = " ".join(element.proto.body for element in app.get("html"))
    assert "RTX A6000" in html
    assert "BM25 #1" in html or "dense #1" in html
    assert "Generator: extractive" in " ".join(c.value for c in app.caption).replace("\\", "")
    assert any("extractive fallback" in w.value for w in app.warning)


def test_empty_question_is_an_error_not_a_traceback(app):
    app.button[0].click().run()
    assert not app.exception
    assert [e.value for e in app.error] == ["Type a question first."]


def test_the_loaded_models_are_kept_out_of_full_garbage_collections(app):
    """Streamlit's collection after every run is off (.streamlit/config.toml), and what the app loaded is frozen
    (ui.app_state.freeze_loaded_objects), so the collections Python still makes stay short."""
    import gc
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[1] / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False
    assert not app.exception
    assert gc.get_freeze_count() > 100_000, "the libraries and models loaded by the app are frozen"
