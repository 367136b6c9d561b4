"""`cli.py ask` end to end on the demo corpus, and the extractive answerer's answers and abstentions."""

from __future__ import annotations

import json

import pytest
from haystack import Document

import cli
from components.extractive_answerer import NO_ANSWER, ExtractiveAnswerer
from configuration.model_paths import resolve_embedding_model
from tests.conftest import DEMO_CORPUS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOUPE_DATA_DIR", str(data_dir))
        assert cli.main(["ingest", str(DEMO_CORPUS)]) == 0
    return data_dir


@pytest.fixture
def demo_env(demo_dir, monkeypatch):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(demo_dir))
    monkeypatch.setenv("LOUPE_GENERATOR_KIND", "transformers")
    monkeypatch.setenv("LOUPE_GENERATOR_MODEL", "nobody/not-cached-model")
    return demo_dir


def test_ask_json_has_every_field(demo_env, capsys):
    code = cli.main(["ask", "Which optimizer and learning rate were used?", "--doc", "coral_reef_segmentation",
                     "--doc", "bird_song_detection", "--mode", "hybrid", "--top-k", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "NOTE: using the extractive answerer" in err and "nobody/not-cached-model" in err
    data = json.loads(out)  # exactly one JSON object on stdout
    assert data["question"] == "Which optimizer and learning rate were used?"
    assert data["answer"] and data["answer"] != NO_ANSWER
    assert data["generator"]["kind"] == "extractive" and "nobody/not-cached-model" in data["generator"]["fallback_reason"]
    assert set(data["timings"]) == {"retrieval_ms", "generation_ms"}
    assert len(data["passages"]) == 3
    for passage in data["passages"]:
        assert {"id", "doc_id", "title", "page", "text", "score", "ranks"} <= set(passage)
        assert passage["doc_id"] in {"coral_reef_segmentation", "bird_song_detection"}
        assert set(passage["ranks"]) == {"bm25", "dense"}
        assert passage["page"] == 1 and passage["text"]


def test_ask_support_map(demo_env, capsys):
    assert cli.main(["ask", "Which GPU was used?", "--doc", "sonar_fish_counting", "--support", "--json"]) == 0
    support = json.loads(capsys.readouterr().out)["support"]
    assert support["sentences"][0]["supported"] is True
    assert support["sentences"][0]["evidence"][0]["passage"] == 0
    assert cli.main(["ask", "Which GPU was used?", "--doc", "sonar_fish_counting", "--support"]) == 0
    assert "1. supported by [1]: " in capsys.readouterr().out


def test_ask_prints_answer_and_passages(demo_env, capsys):
    assert cli.main(["ask", "Which GPU was used?", "--doc", "sonar_fish_counting", "--mode", "bm25"]) == 0
    out = capsys.readouterr().out
    assert "RTX A6000" in out
    assert "-- generator: extractive (extractive)" in out
    assert "[1] Counting Migrating Salmon" in out and "bm25 #1" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "seeds?", "--doc", "nope"], "unknown document id(s): nope"),
        (["ask", "  "], "the question is empty"),
        (["ask", "seeds?", "--top-k", "0"], "--top-k must be at least 1"),
    ],
)
def test_ask_bad_input(demo_env, capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_setting_is_reported(demo_env, capsys, monkeypatch):
    monkeypatch.setenv("LOUPE_TOP_K", "lots")
    assert cli.main(["ask", "seeds?"]) == 2
    assert "top_k must be a int" in capsys.readouterr().err


class TestExtractiveAnswerer:
    PASSAGES = [
        Document(content="Plots were visited weekly. All seeds were fixed to 42 for reproducibility.", meta={}),
        Document(content="The network was trained with the Adam optimizer. Training took two days.", meta={}),
    ]

    def answerer(self):
        return ExtractiveAnswerer(model=resolve_embedding_model("sentence-transformers/all-MiniLM-L6-v2"))

    def test_quotes_and_cites_the_supporting_sentence(self):
        streamed = []
        reply = self.answerer().run(
            query="Which optimizer was used for training?", documents=self.PASSAGES, streaming_callback=streamed.append
        )["replies"][0]
        assert reply.text.startswith("The network was trained with the Adam optimizer. [2]")
        assert 2 in reply.meta["citations"]
        assert "".join(chunk.content for chunk in streamed) == reply.text

    def test_abstains_when_nothing_is_similar(self):
        reply = self.answerer().run(query="What is the capital city of Peru?", documents=self.PASSAGES)["replies"][0]
        assert reply.text == NO_ANSWER
        assert reply.meta["citations"] == []

    def test_abstains_without_passages(self):
        assert self.answerer().run(query="Anything?", documents=[])["replies"][0].text == NO_ANSWER
