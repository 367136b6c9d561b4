"""Retrieval evaluation on BEIR-format sets: metrics, file checks, the `eval-retrieval` command, PubMedQA."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from haystack import Document

import cli
from configuration.settings import Settings
from loupe.retrieval_eval import (
    METRICS,
    BeirFormatError,
    document_ranking,
    evaluate_beir,
    format_table,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    score_rankings,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PUBMEDQA = SHARED / "data" / "pubmedqa" / "pqal_dev.json"


# --- metrics, by hand ---------------------------------------------------------------------------------------


class TestMetrics:
    def test_ndcg_graded(self):
        # DCG = 1/log2(2) + 0/log2(3) + 2/log2(4) = 1 + 0 + 1 = 2
        # ideal: gains 2, 1 -> 2/log2(2) + 1/log2(3) = 2 + 0.630930
        assert ndcg_at_k(["a", "b", "c"], {"a": 1, "b": 0, "c": 2}) == pytest.approx(2 / (2 + 1 / math.log2(3)))

    def test_ndcg_perfect_and_ideal_order(self):
        assert ndcg_at_k(["c", "a", "x"], {"a": 1, "c": 2}) == pytest.approx(1.0)
        # swapped: 1/1 + 2/log2(3) over 2/1 + 1/log2(3)
        expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
        assert ndcg_at_k(["a", "c"], {"a": 1, "c": 2}) == pytest.approx(expected)

    def test_ndcg_counts_only_the_top_k_but_the_ideal_counts_all_relevant(self):
        assert ndcg_at_k(["x", "a"], {"a": 1}, k=1) == 0.0
        # two relevant, one retrieved at rank 1: 1 / (1 + 1/log2(3))
        assert ndcg_at_k(["a", "x"], {"a": 1, "b": 1}, k=10) == pytest.approx(1 / (1 + 1 / math.log2(3)))

    def test_ndcg_without_relevant_documents_is_zero(self):
        assert ndcg_at_k(["a"], {"a": 0}) == 0.0
        assert ndcg_at_k([], {"a": 1}) == 0.0

    def test_recall(self):
        ranking = ["a", "b", "c", "d", "e", "f"]
        judgments = {"b": 1, "f": 2, "z": 1, "c": 0}  # c is judged but not relevant; z is never retrieved
        assert recall_at_k(ranking, judgments, 5) == pytest.approx(1 / 3)
        assert recall_at_k(ranking, judgments, 10) == pytest.approx(2 / 3)
        assert recall_at_k([], judgments, 10) == 0.0

    def test_mrr(self):
        assert mrr_at_k(["x", "y", "a", "b"], {"a": 1, "b": 2}) == pytest.approx(1 / 3)
        assert mrr_at_k(["a"], {"a": 1}) == 1.0
        assert mrr_at_k(["x", "y"], {"a": 1}) == 0.0  # no hit
        assert mrr_at_k(["x", "y", "a"], {"a": 1}, k=2) == 0.0  # hit below the cut
        assert mrr_at_k(["x", "a"], {"x": 0, "a": 1}) == 0.5  # score 0 is not relevant

    def test_score_rankings_averages_over_queries_and_rounds(self):
        qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
        rankings = {"q1": ["a"], "q2": ["x", "b"]}  # q3 has no ranking: it scores 0
        scores = score_rankings(rankings, qrels)
        assert list(scores) == list(METRICS)
        assert scores["mrr@10"] == round((1 + 0.5 + 0) / 3, 4)
        assert scores["recall@10"] == round(2 / 3, 4)
        assert scores["ndcg@10"] == round((1 + 1 / math.log2(3)) / 3, 4)

    def test_document_ranking_keeps_each_documents_best_chunk(self):
        chunks = [Document(id=f"{doc}#{i}", content="x", meta={"doc_id": doc}) for doc, i in
                  [("b", 1), ("a", 0), ("b", 0), ("c", 2), ("a", 1)]]
        assert document_ranking(chunks) == ["b", "a", "c"]

    def test_format_table_aligns_modes_and_metrics(self):
        table = format_table({"bm25": dict.fromkeys(METRICS, 0.5), "hybrid": dict.fromkeys(METRICS, 0.75)})
        lines = table.splitlines()
        assert all(name in lines[0] for name in METRICS)
        assert lines[1].startswith("bm25") and "0.5000" in lines[1]
        assert lines[2].startswith("hybrid") and "0.7500*" in lines[2]
        assert len({len(line.rstrip("* ")) for line in lines[1:3]}) == 1


# --- a tiny BEIR set ----------------------------------------------------------------------------------------

TINY_CORPUS = [
    {"_id": "bats", "title": "Bat echolocation", "text": "Bats emit ultrasonic calls and listen to the echoes to locate insects at night."},
    {"_id": "coral", "title": "Coral bleaching", "text": "Coral reefs bleach when warm water makes corals expel their symbiotic algae."},
    {"_id": "wolves", "title": "Wolves in Yellowstone", "text": "Reintroduced wolves changed elk grazing along the rivers of Yellowstone."},
    {"_id": "bees", "title": "Honeybee waggle dance", "text": "Honeybees perform a waggle dance that tells nestmates the direction of flowers."},
    {"_id": "tides", "title": "Tides", "text": "The gravitational pull of the moon raises the ocean tides twice a day."},
    {"_id": "ferns", "title": "Fern spores", "text": "Ferns reproduce by spores released from sori under their fronds."},
    {"_id": "salmon", "title": "Salmon migration", "text": "Salmon return from the sea to spawn in the stream where they hatched."},
    {"_id": "lichen", "title": "Lichens", "text": "A lichen is a partnership of a fungus with an alga or a cyanobacterium."},
]
TINY_QUERIES = [
    {"_id": "q1", "text": "How do bats use ultrasonic echoes to find insects?"},
    {"_id": "q2", "text": "Why does coral bleach in warm water?"},
    {"_id": "q3", "text": "What does the honeybee waggle dance tell nestmates?"},
    {"_id": "q4", "text": "Where do salmon spawn?"},
    {"_id": "q5", "text": "A query without a relevant document"},
]
TINY_QRELS = ["q1\tbats\t1", "q2\tcoral\t2", "q2\ttides\t0", "q3\tbees\t1", "q4\tsalmon\t1", "q5\tferns\t0"]


def write_tiny_set(folder: Path, qrels_lines: list[str] | None = None, header: bool = True) -> list[str]:
    corpus, queries, qrels = folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels.tsv"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in TINY_CORPUS), encoding="utf-8")
    queries.write_text("".join(json.dumps(row) + "\n" for row in TINY_QUERIES), encoding="utf-8")
    lines = (["query-id\tcorpus-id\tscore"] if header else []) + (qrels_lines if qrels_lines is not None else TINY_QRELS)
    qrels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(corpus), str(queries), str(qrels)]


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No loupe.toml or LOUPE_ variables of the developer's: the defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOUPE_CONFIG", str(tmp_path / "absent.toml"))
    for name in list(os.environ):
        if name.startswith("LOUPE_") and name != "LOUPE_CONFIG":
            monkeypatch.delenv(name)


class TestLoadBeir:
    def test_reads_the_three_files_and_skips_queries_without_a_relevant_document(self, tmp_path):
        beir = load_beir(*map(Path, write_tiny_set(tmp_path)))
        assert len(beir.corpus) == 8 and beir.corpus["bats"]["title"] == "Bat echolocation"
        assert beir.qrels["q2"] == {"coral": 2, "tides": 0}
        assert set(beir.qrels) == {"q1", "q2", "q3", "q4"}
        assert beir.skipped_queries == 1  # q5: only a score-0 judgment

    def test_title_may_be_missing_and_ids_may_be_numbers(self, tmp_path):
        (tmp_path / "c.jsonl").write_text('{"_id": 7, "text": "seven"}\n\n{"_id": "8", "title": null, "text": "eight"}\n')
        (tmp_path / "q.jsonl").write_text('{"_id": 1, "text": "seven?"}\n')
        (tmp_path / "r.tsv").write_text("query-id\tcorpus-id\tscore\n1\t7\t1\n")
        beir = load_beir(tmp_path / "c.jsonl", tmp_path / "q.jsonl", tmp_path / "r.tsv")
        assert beir.corpus == {"7": {"title": "", "text": "seven"}, "8": {"title": "", "text": "eight"}}
        assert beir.qrels == {"1": {"7": 1}}

    @pytest.mark.parametrize(
        "line, message",
        [
            ('{"_id": "x", "text": "unclosed', r"corpus\.jsonl:3: invalid JSON"),
            ('{"title": "no id", "text": "t"}', r"corpus\.jsonl:3: missing or empty \"_id\""),
            ('{"_id": "x", "title": "no text"}', r"corpus\.jsonl:3: document 'x' has no \"text\""),
            ('["a", "list"]', r"corpus\.jsonl:3: expected a JSON object"),
            ('{"_id": "bats", "text": "again"}', r"corpus\.jsonl:3: duplicate document id 'bats'"),
        ],
    )
    def test_bad_corpus_line(self, tmp_path, line, message):
        paths = write_tiny_set(tmp_path)
        rows = Path(paths[0]).read_text().splitlines()
        Path(paths[0]).write_text("\n".join(rows[:2] + [line] + rows[2:]) + "\n")
        with pytest.raises(BeirFormatError, match=message):
            load_beir(*map(Path, paths))

    @pytest.mark.parametrize(
        "qrels, header, message",
        [
            (TINY_QRELS, False, r"qrels\.tsv:1: expected the header line"),
            (["q1\tbats"], True, r"qrels\.tsv:2: expected 3 tab-separated columns .* got 2"),
            (["q1 bats 1"], True, r"qrels\.tsv:2: expected 3 tab-separated columns"),
            (["q1\tbats\tyes"], True, r"qrels\.tsv:2: the score must be an integer"),
            (["q1\tbats\t1", "q9\tbats\t1"], True, r"qrels\.tsv:3: unknown query id 'q9'"),
            (["q1\tnowhere\t1"], True, r"qrels\.tsv:2: unknown document id 'nowhere'"),
            (["q1\tbats\t1", "q1\tbats\t2"], True, r"qrels\.tsv:3: a second judgment"),
        ],
    )
    def test_bad_qrels(self, tmp_path, qrels, header, message):
        with pytest.raises(BeirFormatError, match=message):
            load_beir(*map(Path, write_tiny_set(tmp_path, qrels, header)))

    def test_missing_and_empty_files(self, tmp_path):
        paths = write_tiny_set(tmp_path)
        with pytest.raises(BeirFormatError, match=r"absent\.jsonl: no such file"):
            load_beir(tmp_path / "absent.jsonl", Path(paths[1]), Path(paths[2]))
        Path(paths[1]).write_text("\n")
        with pytest.raises(BeirFormatError, match=r"queries\.jsonl: no queries"):
            load_beir(*map(Path, paths))

    def test_is_a_value_error(self):
        assert issubclass(BeirFormatError, ValueError)

    def test_unknown_mode_is_refused_before_anything_loads(self, tmp_path):
        with pytest.raises(ValueError, match="modes must be among"):
            evaluate_beir(Settings(), *map(Path, write_tiny_set(tmp_path)), modes=["sparse"])

    def test_no_query_with_a_relevant_document(self, tmp_path):
        with pytest.raises(ValueError, match="no query has a relevant document"):
            evaluate_beir(Settings(), *map(Path, write_tiny_set(tmp_path, ["q1\tbats\t0"])), modes=["bm25"])


class TestEvalRetrievalCommand:
    def test_bad_corpus_line_exits_2_naming_file_and_line(self, tmp_path, capsys, isolated):
        paths = write_tiny_set(tmp_path)
        Path(paths[0]).write_text(Path(paths[0]).read_text() + "{not json\n")
        assert cli.main(["eval-retrieval", *paths, "--json"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and f"{paths[0]}:9: invalid JSON" in err

    def test_qrels_without_header_exits_2(self, tmp_path, capsys, isolated):
        paths = write_tiny_set(tmp_path, header=False)
        assert cli.main(["eval-retrieval", *paths]) == 2
        assert f"error: {paths[2]}:1: expected the header line" in capsys.readouterr().err

    def test_qrels_with_missing_column_exits_2(self, tmp_path, capsys, isolated):
        paths = write_tiny_set(tmp_path, ["q1\tbats\t1", "q2\tcoral"])
        assert cli.main(["eval-retrieval", *paths]) == 2
        assert f"error: {paths[2]}:3: expected 3 tab-separated columns" in capsys.readouterr().err

    def test_missing_file_exits_2(self, tmp_path, capsys, isolated):
        paths = write_tiny_set(tmp_path)
        missing = str(tmp_path / "nope.jsonl")
        assert cli.main(["eval-retrieval", paths[0], missing, paths[2]]) == 2
        captured = capsys.readouterr()
        assert f"error: {missing}: no such file" in captured.err and captured.out == ""

    @pytest.mark.slow
    def test_end_to_end_json(self, tmp_path, capsys, isolated):
        assert cli.main(["eval-retrieval", *write_tiny_set(tmp_path), "--json"]) == 0
        captured = capsys.readouterr()
        results = json.loads(captured.out)
        assert list(results) == ["hybrid", "bm25", "dense"]
        for scores in results.values():
            assert set(scores) == set(METRICS)
            assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for value in scores.values())
        assert results["bm25"]["recall@10"] == 1.0
        assert results["bm25"]["mrr@10"] == 1.0  # each query names its document's own words
        assert "[8/8] indexed" in captured.err and "[4/4] dense queries" in captured.err


# --- PubMedQA -----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not PUBMEDQA.is_file(), reason=f"PubMedQA is not available at {PUBMEDQA} (../shared is absent)")
def test_pubmedqa_hybrid_is_not_worse_than_the_better_single_retriever(tmp_path):
    from bench.make_beir_pubmedqa import write_beir

    paths = write_beir(tmp_path, PUBMEDQA, limit=100)
    calls = []
    results = evaluate_beir(
        Settings(), paths["corpus"], paths["queries"], paths["qrels"], ["bm25", "dense", "hybrid"],
        progress=lambda done, total, label: calls.append((done, total, label)),
    )
    assert results.queries == 100 and results.skipped_queries == 0 and results.documents == 100
    best_single = max(results["bm25"]["ndcg@10"], results["dense"]["ndcg@10"])
    assert results["hybrid"]["ndcg@10"] >= best_single - 0.01, format_table(results)
    assert results["bm25"]["recall@10"] >= 0.9 and results["dense"]["recall@10"] >= 0.9, format_table(results)
    finished = [(done, total) for done, total, _ in calls if done == total]
    assert finished == [(100, 100)] * 4  # indexing, then each of the three modes
