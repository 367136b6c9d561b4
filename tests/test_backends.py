"""Both document-store backends from settings; pipeline serialization; Elasticsearch when a server is given."""

from __future__ import annotations

import os
import uuid

import pytest
from haystack import Pipeline

from components.extractive_answerer import ExtractiveAnswerer
from configuration.settings import Settings
from document_stores.json_file import JSONFileDocumentStore
from loupe.stores import ELASTICSEARCH_MAPPING, build_retrievers
from pipelines.answer import build_answer_pipeline
from pipelines.indexing import build_indexing_pipeline
from pipelines.retrieval import build_retrieval_pipeline

ALLOWED = ["components.*", "document_stores.*"]


def es_settings(tmp_path, **changes) -> Settings:
    return Settings(
        data_dir=tmp_path, backend="elasticsearch", elasticsearch_url="http://es.example:9200",
        elasticsearch_index="papers", generator_kind="extractive", **changes,
    ).validate()


class TestElasticsearchConstruction:
    """What can be checked without a server: nothing here connects (the client is created lazily)."""

    def test_store_and_retrievers_from_settings(self, tmp_path, monkeypatch):
        from haystack_integrations.components.retrievers.elasticsearch import (
            ElasticsearchBM25Retriever,
            ElasticsearchEmbeddingRetriever,
        )
        from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore

        monkeypatch.setenv("ELASTICSEARCH_API_KEY", "c2VjcmV0")
        bundle = build_retrievers(es_settings(tmp_path, top_k_bm25=7, top_k_dense=9))
        assert isinstance(bundle.store, ElasticsearchDocumentStore)
        data = bundle.store.to_dict()["init_parameters"]
        assert data["hosts"] == "http://es.example:9200"
        assert data["index"] == "papers"
        assert data["custom_mapping"] == ELASTICSEARCH_MAPPING
        assert data["api_key"] == {"type": "env_var", "env_vars": ["ELASTICSEARCH_API_KEY"], "strict": False}
        assert "c2VjcmV0" not in str(data)  # the key itself is never serialized
        bm25, dense = bundle.bm25_retriever(), bundle.dense_retriever()
        assert isinstance(bm25, ElasticsearchBM25Retriever) and isinstance(dense, ElasticsearchEmbeddingRetriever)
        assert bm25.to_dict()["init_parameters"]["top_k"] == 7
        assert bm25.to_dict()["init_parameters"]["fuzziness"] == "0"
        assert dense.to_dict()["init_parameters"]["top_k"] == 9

    def test_basic_auth_uses_password_from_environment(self, tmp_path, monkeypatch):
        monkeypatch.setenv("ELASTICSEARCH_PASSWORD", "pw")
        bundle = build_retrievers(es_settings(tmp_path, elasticsearch_username="loupe"))
        assert bundle.store._kwargs["basic_auth"] == ("loupe", "pw")

    def test_mapping_types_chunk_metadata(self):
        properties = ELASTICSEARCH_MAPPING["properties"]
        assert properties["doc_id"] == {"type": "keyword"}  # scope filters are exact matches
        assert properties["embedding"]["type"] == "dense_vector"
        assert properties["embedding"]["similarity"] == "cosine"
        for field in ("page", "chunk_index", "char_start", "char_end"):
            assert properties[field]["type"] == "integer"
        assert properties["title"]["fields"]["keyword"]["type"] == "keyword"

    def test_hybrid_pipeline_round_trips(self, tmp_path):
        settings = es_settings(tmp_path)
        pipeline = build_retrieval_pipeline(settings, build_retrievers(settings), "hybrid")
        assert_round_trip(pipeline)
        assert "ElasticsearchBM25Retriever" in pipeline.dumps()


def assert_round_trip(pipeline: Pipeline) -> Pipeline:
    text = pipeline.dumps()
    loaded = Pipeline.loads(text, allowed_modules=ALLOWED)
    original, again = pipeline.to_dict(), loaded.to_dict()
    assert again["components"] == original["components"]
    assert sorted(map(str, again["connections"])) == sorted(map(str, original["connections"]))
    assert set(loaded.graph.nodes) == set(pipeline.graph.nodes)
    assert set(loaded.graph.edges) == set(pipeline.graph.edges)
    return loaded


class TestEmbeddedSerialization:
    def test_pipelines_round_trip(self, settings):
        bundle = build_retrievers(settings)
        for mode in ("hybrid", "bm25", "dense"):
            assert_round_trip(build_retrieval_pipeline(settings, bundle, mode))
        assert_round_trip(build_indexing_pipeline(settings, bundle.store))
        answerer = ExtractiveAnswerer(model="some/model", min_similarity=0.5)
        loaded = assert_round_trip(build_answer_pipeline(settings.prompt_template, answerer))
        assert loaded.get_component("generator").min_similarity == 0.5

    def test_loading_refuses_unlisted_modules(self, settings):
        from haystack.core.errors import DeserializationError

        text = build_retrieval_pipeline(settings, build_retrievers(settings), "hybrid").dumps()
        with pytest.raises(DeserializationError):
            Pipeline.loads(text)

    def test_store_file_reload_and_corruption(self, settings):
        from haystack import Document

        store = JSONFileDocumentStore(path=str(settings.store_path))
        store.write_documents([Document(id="a#0", content="alpha", meta={"doc_id": "a"})])
        store.persist()
        reader = JSONFileDocumentStore(path=str(settings.store_path))
        assert [d.id for d in reader.filter_documents()] == ["a#0"]
        store.write_documents([Document(id="b#0", content="beta", meta={"doc_id": "b"})])
        store.persist()
        assert reader.reload_if_changed() is True
        assert sorted(d.id for d in reader.filter_documents()) == ["a#0", "b#0"]
        assert reader.reload_if_changed() is False
        settings.store_path.write_text("{not json", encoding="utf-8")
        with pytest.raises(ValueError, match="unreadable"):
            JSONFileDocumentStore(path=str(settings.store_path))


ES_URL = os.environ.get("ELASTICSEARCH_URL")


@pytest.mark.slow
@pytest.mark.skipif(not ES_URL, reason="ELASTICSEARCH_URL is not set: no Elasticsearch server to test against")
def test_live_elasticsearch_ingest_and_scoped_hybrid(tmp_path):
    from loupe.ingest import Ingester
    from loupe.qa import Asker

    settings = Settings(
        data_dir=tmp_path, backend="elasticsearch", elasticsearch_url=ES_URL,
        elasticsearch_index=f"loupe-test-{uuid.uuid4().hex[:8]}", generator_kind="extractive",
    ).validate()
    bundle = build_retrievers(settings)
    try:
        from tests.conftest import DEMO_CORPUS

        report = Ingester(settings, bundle.store).ingest([DEMO_CORPUS])
        assert report.exit_code == 0
        bundle.store.client.indices.refresh(index=settings.elasticsearch_index)
        assert Ingester(settings, bundle.store).ingest([DEMO_CORPUS]).unchanged == report.added
        asker = Asker(settings, bundle=bundle)
        passages = asker.retrieve("Which GPU was used?", doc_ids=["sonar_fish_counting"], mode="hybrid")
        assert passages and {p.meta["doc_id"] for p in passages} == {"sonar_fish_counting"}
        assert any(p.meta["ranks"]["bm25"] and p.meta["ranks"]["dense"] for p in passages)
        assert {"chunk_index", "char_start", "char_end", "page", "title"} <= set(passages[0].meta)
    finally:
        bundle.store.client.indices.delete(index=settings.elasticsearch_index, ignore_unavailable=True)
