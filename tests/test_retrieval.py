"""Hybrid retrieval on the real embedding model: fusion, per-retriever ranks, modes and scope."""

from __future__ import annotations

import pytest
from haystack import Document

from components.rank_fusion import RankFusion
from loupe.ingest import Ingester
from loupe.qa import Asker, QuestionError
from loupe.stores import build_retrievers
from tests.conftest import DEMO_CORPUS


def doc(doc_id: str, score: float) -> Document:
    return Document(id=doc_id, content=doc_id, score=score, meta={"doc_id": doc_id})


class TestRankFusion:
    def test_fused_scores_and_ranks(self):
        bm25 = [doc("a", 9.0), doc("b", 5.0), doc("c", 1.0)]
        dense = [doc("c", 0.9), doc("a", 0.8), doc("d", 0.1)]
        fused = RankFusion(top_k=3, k=60).run(bm25_documents=bm25, dense_documents=dense)["documents"]
        assert [d.id for d in fused] == ["a", "c", "b"]
        a, c, b = fused
        assert a.score == pytest.approx(1 / 61 + 1 / 62)
        assert c.score == pytest.approx(1 / 63 + 1 / 61)
        assert b.score == pytest.approx(1 / 62)
        assert a.meta["ranks"] == {"bm25": 1, "dense": 2}
        assert a.meta["retriever_scores"] == {"bm25": 9.0, "dense": 0.8}
        assert b.meta["ranks"] == {"bm25": 2, "dense": None}
        assert b.meta["retriever_scores"]["dense"] is None

    def test_single_retriever_and_weights(self):
        fused = RankFusion(top_k=2, weights={"dense": 2.0}).run(dense_documents=[doc("x", 1.0), doc("y", 0.5)])
        assert [d.meta["ranks"] for d in fused["documents"]] == [{"bm25": None, "dense": 1}, {"bm25": None, "dense": 2}]
        assert fused["documents"][0].score == pytest.approx(2 / 61)

    def test_run_top_k_overrides_and_validation(self):
        docs = [doc(str(i), 1.0) for i in range(10)]
        assert len(RankFusion(top_k=5).run(bm25_documents=docs, top_k=3)["documents"]) == 3
        with pytest.raises(ValueError, match="unknown retrievers"):
            RankFusion(weights={"splade": 1.0})
        with pytest.raises(ValueError, match="at least 1"):
            RankFusion(top_k=0)

    def test_serialization_round_trip(self):
        fusion = RankFusion(top_k=4, k=10, weights={"bm25": 0.5})
        again = RankFusion.from_dict(fusion.to_dict())
        assert (again.top_k, again.k, again.weights) == (4, 10, {"bm25": 0.5, "dense": 1.0})


@pytest.fixture(scope="module")
def demo_asker(tmp_path_factory):
    from configuration.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), generator_kind="extractive").validate()
    bundle = build_retrievers(settings)
    Ingester(settings, bundle.store).ingest([DEMO_CORPUS])
    return Asker(settings, bundle=bundle)


@pytest.mark.slow
class TestHybridRetrieval:
    QUESTION = "Which GPU was used to train the sonar fish detector?"

    def test_hybrid_passages_carry_both_ranks(self, demo_asker):
        passages = demo_asker.retrieve(self.QUESTION, mode="hybrid", top_k=5)
        assert len(passages) == 5
        assert passages[0].meta["doc_id"] == "sonar_fish_counting"
        scores = [p.score for p in passages]
        assert scores == sorted(scores, reverse=True)
        assert any(p.meta["ranks"]["bm25"] and p.meta["ranks"]["dense"] for p in passages)
        for passage in passages:
            ranks = passage.meta["ranks"]
            assert set(ranks) == {"bm25", "dense"}
            expected = sum(1 / (60 + rank) for rank in ranks.values() if rank is not None)
            assert passage.score == pytest.approx(expected)

    @pytest.mark.parametrize(("mode", "present", "absent"), [("bm25", "bm25", "dense"), ("dense", "dense", "bm25")])
    def test_single_modes(self, demo_asker, mode, present, absent):
        passages = demo_asker.retrieve(self.QUESTION, mode=mode, top_k=4)
        assert len(passages) == 4
        assert [p.meta["ranks"][present] for p in passages] == [1, 2, 3, 4]
        assert all(p.meta["ranks"][absent] is None for p in passages)

    def test_scope_returns_only_scoped_documents(self, demo_asker):
        for scope in (["bird_song_detection"], ["coral_reef_segmentation", "herbarium_phenology"]):
            for mode in ("hybrid", "bm25", "dense"):
                passages = demo_asker.retrieve(self.QUESTION, doc_ids=scope, mode=mode, top_k=10)
                assert passages, (scope, mode)
                assert {p.meta["doc_id"] for p in passages} <= set(scope)
        assert demo_asker.retrieve(self.QUESTION, doc_ids=["no_such_doc"]) == []

    def test_ask_reports_everything(self, demo_asker):
        answer = demo_asker.ask("Which deep learning framework was used?", doc_ids=["land_cover_transformer"])
        data = answer.to_json()
        assert data["generator"]["kind"] == "extractive"
        assert "TensorFlow" in data["answer"]
        assert {"retrieval_ms", "generation_ms"} <= set(data["timings"])
        assert all(p["doc_id"] == "land_cover_transformer" for p in data["passages"])
        assert "Which deep learning framework was used?" in answer.prompt
        assert data["passages"][0]["text"] in answer.prompt

    def test_bad_questions(self, demo_asker):
        with pytest.raises(QuestionError, match="empty"):
            demo_asker.ask("   ")
        with pytest.raises(QuestionError, match="mode must be one of"):
            demo_asker.retrieve("seeds?", mode="sparse")
        with pytest.raises(QuestionError, match="top-k must be at least 1"):
            demo_asker.retrieve("seeds?", top_k=0)
