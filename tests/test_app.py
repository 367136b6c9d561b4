"""The Streamlit app, driven through AppTest on a data directory with the demo corpus."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from loupe.ingest import Ingester
from loupe.settings import Settings
from loupe.stores import build_document_store
from tests.conftest import DEMO_CORPUS, REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings(data_dir=data_dir, generator_kind="extractive").validate()
    Ingester(settings, build_document_store(settings)).ingest([DEMO_CORPUS])
    return data_dir


@pytest.fixture
def app(demo_data, monkeypatch):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(demo_data))
    monkeypatch.setenv("LOUPE_GENERATOR_KIND", "transformers")
    monkeypatch.setenv("LOUPE_GENERATOR_MODEL", str(demo_data / "no-such-model"))
    monkeypatch.chdir(REPO)
    st.cache_resource.clear()  # resources are per process; each test has its own data directory
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    return at


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
