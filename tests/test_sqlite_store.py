"""The SQLite document store: Haystack filter semantics, write policies, persistence, other processes, crashes,
agreement with InMemoryDocumentStore, serialization, and the retriever components in pipelines."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.document_stores.errors import DocumentStoreError, DuplicateDocumentError
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy, FilterPolicy
from haystack.errors import FilterError

from components.rank_fusion import RankFusion
from components.retrievers.sqlite import SQLiteBM25Retriever, SQLiteEmbeddingRetriever
from document_stores.sqlite import SQLiteDocumentStore, filter_to_sql, fts5_query, tokenize

REPO = Path(__file__).resolve().parents[1]
ALLOWED = ["components.*", "document_stores.*"]
DIM = 8


def unit(rng: np.random.Generator, dim: int = DIM) -> list[float]:
    vector = rng.standard_normal(dim)
    return (vector / np.linalg.norm(vector)).tolist()


@pytest.fixture
def store(tmp_path) -> SQLiteDocumentStore:
    store = SQLiteDocumentStore(path=str(tmp_path / "store" / "documents.sqlite3"))
    yield store
    store.close()


def ids(documents) -> list[str]:
    return [document.id for document in documents]


# ------------------------------------------------------------------------------------------------------------------
# Filters: the same answers as InMemoryDocumentStore
# ------------------------------------------------------------------------------------------------------------------

FILTER_DOCS = [
    Document(id="a", content="Owls hunt at night.", meta={"doc_id": "p1", "year": 2019, "score": 0.5, "ok": True,
                                                          "tags": ["owl", "bird"], "author": {"name": "Ann"},
                                                          "date": "2021-03-04T10:00:00"}),
    Document(id="b", content="Bats use echolocation.", meta={"doc_id": "p1", "year": 2021, "score": 1.5, "ok": False,
                                                             "author": {"name": "Bo"}, "date": "2022-01-01"}),
    Document(id="c", content="Frogs call at ponds.", meta={"doc_id": "p2", "year": 2023, "score": 2, "ok": True,
                                                           "tags": ["frog"], "odd key": "x", "date": "2023-06-30"}),
    Document(id="d", content=None, meta={"doc_id": "p3", "year": None, "author": {"name": None}}),
    Document(id="e", content="Toads, not frogs.", meta={"doc_id": "p2", "year": 2021, "title": "It's \"quoted\""}),
    Document(id="f", content="", meta={"doc_id": "1", "year": 1}),
]

FILTERS = {
    "eq str": {"field": "meta.doc_id", "operator": "==", "value": "p1"},
    "eq numeric-looking str": {"field": "meta.doc_id", "operator": "==", "value": "1"},
    "eq int vs str stored": {"field": "meta.doc_id", "operator": "==", "value": 1},
    "eq int": {"field": "meta.year", "operator": "==", "value": 2021},
    "eq float == int": {"field": "meta.score", "operator": "==", "value": 2.0},
    "eq bool": {"field": "meta.ok", "operator": "==", "value": True},
    "eq bool as int": {"field": "meta.ok", "operator": "==", "value": 1},
    "eq None (missing or null)": {"field": "meta.year", "operator": "==", "value": None},
    "eq list": {"field": "meta.tags", "operator": "==", "value": ["owl", "bird"]},
    "eq list as json text": {"field": "meta.tags", "operator": "==", "value": '["frog"]'},
    "eq nested": {"field": "meta.author.name", "operator": "==", "value": "Bo"},
    "eq nested None": {"field": "meta.author.name", "operator": "==", "value": None},
    "eq quoted value": {"field": "meta.title", "operator": "==", "value": "It's \"quoted\""},
    "eq odd key": {"field": "meta.odd key", "operator": "==", "value": "x"},
    "eq date other spelling": {"field": "meta.date", "operator": "==", "value": "2022-01-01T00:00:00"},
    "ne str": {"field": "meta.doc_id", "operator": "!=", "value": "p1"},
    "ne None": {"field": "meta.year", "operator": "!=", "value": None},
    "ne int": {"field": "meta.year", "operator": "!=", "value": 2021},
    "ne nested": {"field": "meta.author.name", "operator": "!=", "value": "Ann"},
    "in str": {"field": "meta.doc_id", "operator": "in", "value": ["p2", "p3"]},
    "in mixed": {"field": "meta.year", "operator": "in", "value": [2019, None, "2021", 1.0]},
    "in empty": {"field": "meta.doc_id", "operator": "in", "value": []},
    "in long list": {"field": "meta.doc_id", "operator": "in", "value": [f"x{i}" for i in range(1200)] + ["p3"]},
    "in dates": {"field": "meta.date", "operator": "in", "value": ["2023-06-30T00:00:00", "1999-01-01"]},
    "not in": {"field": "meta.doc_id", "operator": "not in", "value": ["p1", "p2"]},
    "not in with None": {"field": "meta.year", "operator": "not in", "value": [None, 2021]},
    "gt int": {"field": "meta.year", "operator": ">", "value": 2019},
    "gte int": {"field": "meta.year", "operator": ">=", "value": 2021},
    "lt float": {"field": "meta.score", "operator": "<", "value": 1.5},
    "lte float": {"field": "meta.score", "operator": "<=", "value": 1.5},
    "gt None": {"field": "meta.year", "operator": ">", "value": None},
    "gt date": {"field": "meta.date", "operator": ">", "value": "2021-06-01"},
    "lte date": {"field": "meta.date", "operator": "<=", "value": "2022-01-01T00:00:00"},
    "id": {"field": "id", "operator": "in", "value": ["a", "c", "zz"]},
    "content eq": {"field": "content", "operator": "==", "value": "Bats use echolocation."},
    "content None": {"field": "content", "operator": "==", "value": None},
    "content not None": {"field": "content", "operator": "!=", "value": None},
    "legacy bare field": {"field": "doc_id", "operator": "==", "value": "p2"},
    "AND": {"operator": "AND", "conditions": [
        {"field": "meta.doc_id", "operator": "==", "value": "p1"},
        {"field": "meta.year", "operator": ">", "value": 2020},
    ]},
    "OR": {"operator": "OR", "conditions": [
        {"field": "meta.doc_id", "operator": "==", "value": "p3"},
        {"field": "meta.score", "operator": ">=", "value": 2},
    ]},
    "NOT": {"operator": "NOT", "conditions": [
        {"field": "meta.doc_id", "operator": "==", "value": "p1"},
        {"field": "meta.year", "operator": "==", "value": 2021},
    ]},
    "NOT of missing (unknown means no match)": {"operator": "NOT", "conditions": [
        {"field": "meta.score", "operator": ">", "value": 1},
    ]},
    "nested AND/OR/NOT": {"operator": "OR", "conditions": [
        {"operator": "AND", "conditions": [
            {"field": "meta.doc_id", "operator": "in", "value": ["p1", "p2"]},
            {"operator": "NOT", "conditions": [{"field": "meta.ok", "operator": "==", "value": True}]},
        ]},
        {"operator": "AND", "conditions": [
            {"field": "meta.year", "operator": "<", "value": 2000},
            {"operator": "OR", "conditions": [{"field": "id", "operator": "==", "value": "f"}]},
        ]},
    ]},
    "empty AND": {"operator": "AND", "conditions": []},
    "empty OR": {"operator": "OR", "conditions": []},
    "ingest stale chunks": {"operator": "AND", "conditions": [
        {"field": "meta.doc_id", "operator": "==", "value": "p2"},
        {"field": "meta.year", "operator": "!=", "value": 2023},
    ]},
}


@pytest.fixture(scope="module")
def filter_stores(tmp_path_factory):
    path = tmp_path_factory.mktemp("filters") / "documents.sqlite3"
    ours = SQLiteDocumentStore(path=str(path))
    ours.write_documents(FILTER_DOCS)
    reference = InMemoryDocumentStore()
    reference.write_documents(FILTER_DOCS)
    yield ours, reference
    ours.close()


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_match_haystack(filter_stores, name):
    ours, reference = filter_stores
    expected = ids(reference.filter_documents(FILTERS[name]))
    assert ids(ours.filter_documents(FILTERS[name])) == expected
    assert ours.count_documents_by_filter(FILTERS[name]) == len(expected)


def test_filters_inside_searches_match_haystack(filter_stores):
    ours, reference = filter_stores
    for name, filters in FILTERS.items():
        expected = [d.id for d in reference.bm25_retrieval("frogs owls bats toads", filters=filters, top_k=10)]
        assert ids(ours.bm25_retrieval("frogs owls bats toads", filters=filters, top_k=10)) == expected, name


@pytest.mark.parametrize(
    "filters, error",
    [
        ({"field": "meta.doc_id", "operator": "in", "value": "p1"}, FilterError),
        ({"field": "meta.doc_id", "operator": "~", "value": "p1"}, FilterError),
        ({"field": "meta.doc_id", "operator": "=="}, FilterError),
        ({"operator": "XOR", "conditions": []}, FilterError),
        ({"operator": "AND"}, FilterError),
        ({"field": "meta.year", "operator": ">", "value": "not a date"}, FilterError),
        ({"field": "meta.year", "operator": ">", "value": [1, 2]}, FilterError),
        ({"conditions": []}, FilterError),
        ({"field_x": "meta.a", "value": 1}, ValueError),
    ],
)
def test_malformed_filters_raise(filter_stores, filters, error):
    ours, reference = filter_stores
    with pytest.raises(error):
        ours.filter_documents(filters)
    with pytest.raises(error):  # Haystack raises the same
        reference.filter_documents(filters)


ORDERING_DOCS = [
    Document(id="n", content="owls", meta={"doc_id": "d1", "year": 2020, "when": "2021-03-04"}, embedding=[1.0, 0.0]),
    Document(id="s", content="owls", meta={"doc_id": "d2", "year": "soon", "when": "2022-01-01T10:00:00"},
             embedding=[0.0, 1.0]),
    Document(id="t", content="owls", meta={"doc_id": "d3", "year": [2021], "when": None}, embedding=[1.0, 1.0]),
]


def test_ordering_refuses_what_haystack_cannot_compare_on_some_stored_document(store):
    # Haystack raises FilterError when an ordering comparison reaches a stored value it cannot order against the
    # filter value; the store refuses the filter when any stored document has such a value, whatever AND/OR would
    # have short-circuited (the rule of tests/test_store_filter_properties.py).
    store.write_documents(ORDERING_DOCS)
    reference = InMemoryDocumentStore()
    reference.write_documents(ORDERING_DOCS)
    number = {"field": "meta.year", "operator": ">", "value": 2000}
    date_value = {"field": "meta.year", "operator": "<", "value": "2030-01-01"}
    for filters in (number, date_value, {"field": "meta.doc_id", "operator": ">=", "value": False},
                    {"field": "content", "operator": "<", "value": 3}):
        with pytest.raises(FilterError, match="Strings are only comparable if they are ISO formatted dates"):
            reference.filter_documents(filters)
        with pytest.raises(FilterError, match="Strings are only comparable if they are ISO formatted dates"):
            store.filter_documents(filters)
    short_circuited = {"operator": "AND", "conditions": [{"field": "id", "operator": "==", "value": "n"}, number]}
    assert ids(reference.filter_documents(short_circuited)) == ["n"]  # Haystack never reached "soon"
    with pytest.raises(FilterError, match=r"field 'meta.year' holds 'soon'"):
        store.filter_documents(short_circuited)
    for call in (lambda: store.count_documents_by_filter(short_circuited),
                 lambda: store.delete_by_filter(short_circuited),
                 lambda: store.bm25_retrieval("owls", filters=short_circuited),
                 lambda: store.embedding_retrieval([1.0, 0.0], filters=short_circuited)):
        with pytest.raises(FilterError):
            call()
    assert store.count_documents() == 3  # the refused delete deleted nothing
    # A stored list against a number: Haystack crashes (TypeError); the store refuses it, a comparison it cannot make.
    store.delete_documents(["s"])
    reference.delete_documents(["s"])
    with pytest.raises(FilterError, match="Can't compare a value of type list with a filter value of type int"):
        store.filter_documents(number)
    # Values Haystack can order: dates (None never compares), and a field no document has.
    dates = {"field": "meta.when", "operator": ">", "value": "2021-06-01"}
    assert ids(store.filter_documents(dates)) == ids(reference.filter_documents(dates)) == []
    assert ids(store.filter_documents({"field": "meta.when", "operator": "<=", "value": "2021-06-01"})) == ["n"]
    assert store.filter_documents({"field": "meta.nothing", "operator": ">", "value": 1}) == []
    # A filter value no value can be ordered against is malformed: refused even where no document has the field.
    with pytest.raises(FilterError):
        store.filter_documents({"field": "meta.nothing", "operator": ">", "value": "soon"})


def test_only_ordering_comparisons_run_a_check_and_a_numeric_one_uses_the_meta_index(store):
    store.write_documents([Document(id=f"c{i}", content="text", meta={"doc_id": f"d{i % 7}"}) for i in range(50)])
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        store.filter_documents({"operator": "AND", "conditions": [
            {"field": "meta.doc_id", "operator": "in", "value": ["d1", "d2"]},
            {"field": "meta.doc_id", "operator": "!=", "value": "d1"}]})
        assert [s for s in statements if s.startswith("SELECT")] == [statements[1]]  # the filter's query alone
        statements.clear()
        with pytest.raises(FilterError):
            store.filter_documents({"field": "meta.doc_id", "operator": ">", "value": 3})
    finally:
        store._conn.set_trace_callback(None)
    check = next(s for s in statements if s.startswith("SELECT"))
    plan = store._conn.execute(f"EXPLAIN QUERY PLAN {check}").fetchall()
    assert any("documents_meta_doc_id" in str(row) for row in plan), plan


def test_filter_values_are_parameters_never_sql(store):
    store.write_documents([Document(id="a", content="x", meta={"doc_id": "a"})])
    evil = "a' OR 1=1; DROP TABLE documents; --"
    where, params = filter_to_sql({"field": "meta.doc_id", "operator": "==", "value": evil})
    assert evil not in where and evil in params
    assert store.filter_documents({"field": "meta.doc_id", "operator": "==", "value": evil}) == []
    assert store.filter_documents({"field": "meta.x') OR 1=1 --", "operator": "==", "value": None})  # odd key: bound
    with pytest.raises(FilterError):
        store.filter_documents({"field": 'meta.a"b', "operator": "==", "value": 1})
    assert store.count_documents() == 1


def test_scope_filter_uses_the_meta_index(store):
    store.write_documents([Document(id=f"c{i}", content="text", meta={"doc_id": f"d{i % 7}"}) for i in range(50)])
    where, params = filter_to_sql({"field": "meta.doc_id", "operator": "in", "value": ["d1", "d2"]})
    plan = store._conn.execute(f"EXPLAIN QUERY PLAN SELECT rid FROM documents WHERE {where}", params).fetchall()
    assert any("documents_meta_doc_id" in str(row) for row in plan), plan


# ------------------------------------------------------------------------------------------------------------------
# Writing and deleting
# ------------------------------------------------------------------------------------------------------------------


def test_write_policies(store):
    first = [Document(id="a", content="one"), Document(id="b", content="two")]
    assert store.write_documents(first) == 2
    with pytest.raises(DuplicateDocumentError):  # NONE means FAIL, and nothing of the failing call is written
        store.write_documents([Document(id="c", content="three"), Document(id="a", content="again")])
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([Document(id="a", content="x")], policy=DuplicatePolicy.FAIL)
    with pytest.raises(DuplicateDocumentError):  # a repeated id within one call
        store.write_documents([Document(id="z", content="1"), Document(id="z", content="2")])
    assert sorted(ids(store.filter_documents())) == ["a", "b"]

    skipped = [Document(id="a", content="new a"), Document(id="c", content="three"), Document(id="c", content="3")]
    assert store.write_documents(skipped, policy=DuplicatePolicy.SKIP) == 1
    contents = {d.id: d.content for d in store.filter_documents()}
    assert contents == {"a": "one", "b": "two", "c": "three"}

    overwrite = [Document(id="b", content="B", meta={"v": 1}), Document(id="d", content="four"),
                 Document(id="d", content="FOUR")]
    assert store.write_documents(overwrite, policy=DuplicatePolicy.OVERWRITE) == 3
    contents = {d.id: d.content for d in store.filter_documents()}
    assert contents == {"a": "one", "b": "B", "c": "three", "d": "FOUR"}
    assert ids(store.filter_documents()) == ["a", "c", "b", "d"]  # like InMemoryDocumentStore: rewritten last
    assert ids(store.bm25_retrieval("four", top_k=5)) == ["d"]
    assert store.bm25_retrieval("two", top_k=5) == []

    with pytest.raises(ValueError):
        store.write_documents("not a list")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.write_documents([{"id": "x"}])  # type: ignore[list-item]
    assert store.write_documents([]) == 0


def test_count_by_meta_agrees_with_counting_documents(filter_stores):
    from collections import Counter

    ours, _ = filter_stores
    assert ours.count_by_meta("doc_id") == Counter(d.meta.get("doc_id") for d in ours.filter_documents())
    assert ours.count_by_meta("odd key") == {None: 5, "x": 1}
    assert ours.count_by_meta("author.name") == {None: 4, "Ann": 1, "Bo": 1}


def test_documents_round_trip_every_field(store):
    from haystack.dataclasses import ByteStream, SparseEmbedding

    document = Document(
        id="x", content="Grüße, naïve café", meta={"n": 1, "f": 0.25, "nested": {"a": [1, "b", None]}, "t": True},
        embedding=[0.5, -0.25, 0.125], blob=ByteStream(data=b"\x00\x01", mime_type="application/octet-stream"),
        sparse_embedding=SparseEmbedding(indices=[1, 5], values=[0.5, 0.25]),
    )
    store.write_documents([document, Document(id="empty", content=None)])
    read = {d.id: d for d in store.filter_documents()}
    assert read["x"] == document  # these embedding values are exact in float32
    assert read["empty"].content is None and read["empty"].embedding is None and read["empty"].meta == {}
    with pytest.raises(ValueError, match="JSON"):
        store.write_documents([Document(id="bad", content="x", meta={"nan": float("nan")})])


def test_embedding_sizes_must_agree(store):
    store.write_documents([Document(id="a", content="x", embedding=[1.0, 0.0])])
    with pytest.raises(DocumentStoreError, match="embedding sizes differ"):
        store.write_documents([Document(id="b", content="y", embedding=[1.0, 0.0, 0.0])])
    with pytest.raises(DocumentStoreError, match="dimensions"):
        store.embedding_retrieval([1.0, 0.0, 0.0])
    assert store.count_documents() == 1


def test_delete_documents_and_by_filter(store):
    rng = np.random.default_rng(1)
    docs = [Document(id=f"{doc}#{i}", content=f"chunk {i} of {doc} about owls", embedding=unit(rng),
                     meta={"doc_id": doc, "content_hash": "h1" if i < 2 else "h2"})
            for doc in ("a", "b") for i in range(4)]
    store.write_documents(docs)
    assert len(store.bm25_retrieval("owls", top_k=20)) == 8  # loads the search structures
    stale = {"operator": "AND", "conditions": [
        {"field": "meta.doc_id", "operator": "==", "value": "a"},
        {"field": "meta.content_hash", "operator": "!=", "value": "h2"},
    ]}
    assert store.delete_by_filter(stale) == 2
    assert store.count_documents() == 6
    store.delete_documents(["b#0", "missing"])
    remaining = {"a#2", "a#3", "b#1", "b#2", "b#3"}
    assert set(ids(store.filter_documents())) == remaining
    assert set(ids(store.bm25_retrieval("owls", top_k=20))) == remaining
    assert set(ids(store.embedding_retrieval(unit(rng), top_k=20))) == remaining
    with pytest.raises(ValueError):
        store.delete_by_filter({})
    store.delete_all_documents()
    assert store.count_documents() == 0
    assert store.bm25_retrieval("owls") == [] and store.embedding_retrieval(unit(rng)) == []


# ------------------------------------------------------------------------------------------------------------------
# Searching: agreement with InMemoryDocumentStore on realistic text
# ------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    from bench.synthetic import ZipfText

    text = ZipfText(seed=7)
    rng = np.random.default_rng(7)
    vectors = text.unit_vectors(1500, 32)
    docs = [
        Document(id=f"doc{i // 15:03d}#{i % 15}", content=text.text(int(rng.integers(60, 160))),
                 meta={"doc_id": f"doc{i // 15:03d}", "chunk_index": i % 15}, embedding=vectors[i].tolist())
        for i in range(1500)
    ]
    queries = [text.query() for _ in range(30)]
    embeddings = [v.tolist() for v in text.unit_vectors(30, 32)]
    return docs, queries, embeddings


def jaccard(a, b) -> float:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


@pytest.fixture(scope="module")
def agreement_stores(corpus, tmp_path_factory):
    docs, _, _ = corpus
    path = str(tmp_path_factory.mktemp("agree") / "documents.sqlite3")
    ours = SQLiteDocumentStore(path=path)
    for start in range(0, len(docs), 400):
        ours.write_documents(docs[start : start + 400])
    reference = InMemoryDocumentStore(embedding_similarity_function="dot_product")
    reference.write_documents(docs)
    yield ours, SQLiteDocumentStore(path=path, bm25_engine="fts5"), reference
    ours.close()


def test_dense_top_k_is_identical(agreement_stores, corpus):
    ours, _, reference = agreement_stores
    _, _, embeddings = corpus
    scope = {"field": "meta.doc_id", "operator": "in", "value": ["doc003", "doc050", "doc099"]}
    for embedding in embeddings:
        for filters in (None, scope):
            expected = reference.embedding_retrieval(embedding, filters=filters, top_k=10)
            found = ours.embedding_retrieval(embedding, filters=filters, top_k=10)
            assert ids(found) == ids(expected)
            assert np.allclose([d.score for d in found], [d.score for d in expected], atol=1e-5)


def test_bm25_memory_engine_ranks_like_in_memory_bm25l(agreement_stores, corpus):
    """Same BM25L formula and parameters and the same tokenizer: the same ranking and scores (float rounding
    aside), including inside a scope."""
    ours, _, reference = agreement_stores
    _, queries, _ = corpus
    scope = {"field": "meta.doc_id", "operator": "in", "value": ["doc003", "doc004"]}
    for query in queries:
        for filters in (None, scope):
            expected = reference.bm25_retrieval(query, filters=filters, top_k=20)
            found = ours.bm25_retrieval(query, filters=filters, top_k=20)
            assert ids(found) == ids(expected), query
            assert np.allclose([d.score for d in found], [d.score for d in expected], rtol=1e-9)


def test_bm25_fts5_engine_overlaps_strongly(agreement_stores, corpus):
    """FTS5's bm25() is Okapi BM25 (k1=1.2, b=0.75, idf log((N-n+0.5)/(n+0.5))) on the unicode61 tokenizer, while
    InMemoryDocumentStore defaults to BM25L (k1=1.5, delta=0.5, idf log((N+1)/(n+0.5))): the term-frequency
    saturation and the weight of frequent terms differ, so documents near the cut-off swap places. The top-k sets
    still overlap strongly; against Haystack's own BM25Okapi with FTS5's parameters they are identical."""
    _, fts5, reference = agreement_stores
    docs, queries, _ = corpus
    overlaps = [jaccard(ids(fts5.bm25_retrieval(q, top_k=10)), ids(reference.bm25_retrieval(q, top_k=10)))
                for q in queries]
    assert np.mean(overlaps) >= 0.8, overlaps
    okapi = InMemoryDocumentStore(bm25_algorithm="BM25Okapi", bm25_parameters={"k1": 1.2, "b": 0.75})
    okapi.write_documents(docs)
    same = [jaccard(ids(fts5.bm25_retrieval(q, top_k=10)), ids(okapi.bm25_retrieval(q, top_k=10))) for q in queries]
    assert np.mean(same) >= 0.95, same


@pytest.mark.parametrize("engine", ["memory", "fts5"])
def test_bm25_takes_any_user_text(store, engine):
    store.write_documents([Document(id="a", content='Owls "hunt" at night: NEAR the pond (mostly) - AND more*')])
    searcher = SQLiteDocumentStore(path=store.path, bm25_engine=engine)
    for query in ['"owls', "owls AND", "NEAR(owls pond)", "owl*", "-pond", "col:owls", "(((", "'; DROP", "^owls",
                  "owls OR NOT pond", "ünïcödé 東京", '"""', "a:b:c", "owls + pond", "{owls}", "owls\x00"]:
        searcher.bm25_retrieval(query, top_k=3)
    assert ids(searcher.bm25_retrieval('NEAR(owls, "pond")', top_k=3)) == ["a"]
    assert searcher.bm25_retrieval("!!! ???", top_k=3) == []
    with pytest.raises(ValueError):
        searcher.bm25_retrieval("")
    searcher.close()


def test_fts5_query_quotes_every_word():
    assert fts5_query('owls "hunt" NEAR(x) a*b -c') == '"owls" OR "hunt" OR "near" OR "x" OR "a" OR "b" OR "c"'
    assert fts5_query("!!! ...") == ""
    assert tokenize("Ünïcode_words 東京, x2") == ["ünïcode_words", "東", "京", "x2"]


def test_search_structures_follow_writes_in_this_process(store, corpus):
    """Writes, overwrites and deletes after the first query reach the in-memory structures, through segment merges
    and compaction, and give what a freshly opened store gives."""
    docs, queries, embeddings = corpus
    store.write_documents(docs[:300])
    store.bm25_retrieval(queries[0])
    for start in range(300, 900, 30):  # many small segments, merged along the way
        store.write_documents(docs[start : start + 30])
    store.write_documents([Document(id=d.id, content=d.content + " overwritten", embedding=d.embedding, meta=d.meta)
                           for d in docs[:200]], policy=DuplicatePolicy.OVERWRITE)
    store.delete_documents([d.id for d in docs[200:700]])  # enough dead rows to compact
    fresh = SQLiteDocumentStore(path=store.path)
    for query, embedding in zip(queries[:10], embeddings[:10]):
        assert ids(store.bm25_retrieval(query, top_k=10)) == ids(fresh.bm25_retrieval(query, top_k=10))
        dense = store.embedding_retrieval(embedding, top_k=10)
        assert ids(dense) == ids(fresh.embedding_retrieval(embedding, top_k=10))
    assert store._index.dead < store._index.n
    fresh.close()


def test_scores_can_be_scaled_and_embeddings_returned(store):
    store.write_documents([Document(id="a", content="owls owls", embedding=[1.0, 0.0]),
                           Document(id="b", content="bats", embedding=[0.0, 1.0])])
    (bm25,) = store.bm25_retrieval("owls", scale_score=True)
    assert 0.5 < bm25.score < 1 and bm25.embedding is None
    dense = store.embedding_retrieval([2.0, 0.0], scale_score=True, return_embedding=True)
    assert [round(d.score, 6) for d in dense] == [1.0, 0.5] and dense[0].embedding == [1.0, 0.0]
    assert store.embedding_retrieval([1.0, 0.0], top_k=0) == []
    with pytest.raises(ValueError):
        store.embedding_retrieval([])


# ------------------------------------------------------------------------------------------------------------------
# Persistence, other processes, crashes
# ------------------------------------------------------------------------------------------------------------------


def test_persistence_across_instances(tmp_path):
    path = str(tmp_path / "documents.sqlite3")
    rng = np.random.default_rng(3)
    docs = [Document(id=f"d{i}", content=f"text number {i} about herons", embedding=unit(rng), meta={"i": i})
            for i in range(20)]
    writer = SQLiteDocumentStore(path=path)
    writer.write_documents(docs)
    query = unit(rng)
    before = ids(writer.embedding_retrieval(query, top_k=5)), ids(writer.bm25_retrieval("number 7 herons", top_k=5))
    writer.close()
    reader = SQLiteDocumentStore.from_dict(writer.to_dict())
    assert reader.count_documents() == 20
    again = {d.id: d for d in reader.filter_documents()}
    assert all(again[d.id].meta == d.meta and np.allclose(again[d.id].embedding, d.embedding) for d in docs)
    after = ids(reader.embedding_retrieval(query, top_k=5)), ids(reader.bm25_retrieval("number 7 herons", top_k=5))
    assert after == before
    reader.persist()
    reader.close()


def test_unreadable_file_is_reported(tmp_path):
    path = tmp_path / "documents.sqlite3"
    path.write_text("{not a database" * 100, encoding="utf-8")
    with pytest.raises(ValueError, match="unreadable"):
        SQLiteDocumentStore(path=str(path)).count_documents()


def test_threads_share_one_store(store, corpus):
    docs, queries, embeddings = corpus
    store.write_documents(docs[:200])
    errors = []

    def search(n):
        try:
            for i in range(20):
                store.bm25_retrieval(queries[(n + i) % len(queries)], top_k=5)
                store.embedding_retrieval(embeddings[i % len(embeddings)], top_k=5)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=search, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for start in range(200, 400, 20):
        store.write_documents(docs[start : start + 20])
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count_documents() == 400


def child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}

WRITER = """
    import sys, numpy as np
    from haystack import Document
    from document_stores.sqlite import SQLiteDocumentStore
    path, first, batches, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = SQLiteDocumentStore(path=path)
    for batch in range(first, first + batches):
        if len(sys.argv) > 5 and batch > first:  # hang inside the write transaction, after the inserts
            def hang(db):
                inserted = db.execute("SELECT count(*) FROM documents").fetchone()[0]
                print("inside", inserted, flush=True)
                import time; time.sleep(600)
            SQLiteDocumentStore._prune_changes = staticmethod(hang)
        rng = np.random.default_rng(batch)
        vectors = rng.standard_normal((size, 16)).astype("float32")
        store.write_documents([
            Document(id=f"b{batch}-{j}", content=f"batch {batch} item {j} words{batch} heron",
                     meta={"batch": batch, "j": j}, embedding=vectors[j].tolist())
            for j in range(size)
        ])
        print(batch, flush=True)
"""


def expected_batch(batch: int, size: int) -> dict[str, Document]:
    rng = np.random.default_rng(batch)
    vectors = rng.standard_normal((size, 16)).astype("float32")
    return {f"b{batch}-{j}": Document(id=f"b{batch}-{j}", content=f"batch {batch} item {j} words{batch} heron",
                                      meta={"batch": batch, "j": j}, embedding=vectors[j].tolist())
            for j in range(size)}


def test_reader_process_sees_whole_batches_as_another_process_writes(tmp_path):
    path = str(tmp_path / "documents.sqlite3")
    size, batches = 50, 30
    reader = SQLiteDocumentStore(path=path)
    reader.write_documents([Document(id="seed", content="heron seed", embedding=[1.0] * 16)])
    assert ids(reader.bm25_retrieval("heron")) == ["seed"]  # search structures loaded before the writer starts
    process = subprocess.Popen(child(WRITER) + [path, "0", str(batches), str(size)], env=CHILD_ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    mine = 0
    while process.poll() is None:
        count = reader.count_documents()
        assert (count - 1 - mine) % size == 0
        found = reader.bm25_retrieval("heron", top_k=10_000)
        batches_found = {d.meta.get("batch") for d in found} - {None}
        for batch in batches_found:  # a batch is searchable all at once or not at all
            assert len(reader.filter_documents({"field": "meta.batch", "operator": "==", "value": batch})) == size
        seen |= batches_found
        reader.write_documents([Document(id=f"mine{mine}", content="heron of the reader", embedding=[0.5] * 16)])
        mine += 1
    assert process.returncode == 0, process.stderr.read()
    assert reader.count_documents() == 1 + mine + size * batches
    hits = reader.bm25_retrieval(f"words{batches - 1}", top_k=100)  # incremental update from the other process
    assert len(hits) == size and {d.meta["batch"] for d in hits} == {batches - 1}
    dense = reader.embedding_retrieval(expected_batch(batches - 1, size)[f"b{batches - 1}-3"].embedding, top_k=1)
    assert ids(dense) == [f"b{batches - 1}-3"]
    assert reader._index.n - reader._index.dead == reader.count_documents()
    assert len(seen) > 1  # the reader really ran while the writer wrote
    reader.close()


def test_sigkill_mid_write_keeps_every_committed_batch(tmp_path):
    path = str(tmp_path / "documents.sqlite3")
    size = 200
    rng = random.Random(11)
    for round_ in range(6):
        start = SQLiteDocumentStore(path=path)
        first = start.count_documents() // size
        start.close()
        process = subprocess.Popen(child(WRITER) + [path, str(first), "1000", str(size)], env=CHILD_ENV,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        process.stdout.readline()  # at least one batch committed
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL

        store = SQLiteDocumentStore(path=path)
        count = store.count_documents()
        assert count % size == 0 and count // size > first, (round_, count)
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store._conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")
        stored = {d.id: d for d in store.filter_documents()}
        for batch in range(count // size):
            for doc_id, expected in expected_batch(batch, size).items():
                found = stored.pop(doc_id)
                assert (found.content, found.meta) == (expected.content, expected.meta)
                assert np.allclose(found.embedding, expected.embedding)
        assert stored == {}  # nothing from a half-written batch
        last = count // size - 1
        assert len(store.bm25_retrieval(f"words{last}", top_k=size + 1)) == size
        assert store._index.n == count
        store.close()


def test_sigkill_inside_an_open_write_transaction(tmp_path):
    path = str(tmp_path / "documents.sqlite3")
    size = 100
    process = subprocess.Popen(child(WRITER) + [path, "0", "2", str(size), "hang"], env=CHILD_ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "0"
    line = process.stdout.readline().split()
    assert line == ["inside", str(2 * size)], (line, process.stderr.read() if process.poll() is not None else "")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    store = SQLiteDocumentStore(path=path)
    assert store.count_documents() == size
    assert set(ids(store.filter_documents())) == set(expected_batch(0, size))
    assert len(store.bm25_retrieval("heron", top_k=1000)) == size
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.write_documents(list(expected_batch(1, size).values()))  # the store takes writes again
    assert store.count_documents() == 2 * size
    store.close()


# ------------------------------------------------------------------------------------------------------------------
# Components, serialization, pipelines
# ------------------------------------------------------------------------------------------------------------------


def test_store_serialization_round_trip(tmp_path):
    store = SQLiteDocumentStore(path=str(tmp_path / "x.sqlite3"), bm25_engine="fts5", bm25_parameters={"k1": 1.2},
                                indexed_meta_fields=["doc_id", "source"], return_embedding=True)
    data = store.to_dict()
    assert data == {
        "type": "document_stores.sqlite.document_store.SQLiteDocumentStore",
        "init_parameters": {"path": str(tmp_path / "x.sqlite3"), "bm25_engine": "fts5", "bm25_parameters": {"k1": 1.2},
                            "indexed_meta_fields": ["doc_id", "source"], "return_embedding": True},
    }
    assert SQLiteDocumentStore.from_dict(data).to_dict() == data
    assert not (tmp_path / "x.sqlite3").exists()  # nothing is opened until used
    with pytest.raises(ValueError):
        SQLiteDocumentStore(path="x", bm25_engine="bm42")
    with pytest.raises(ValueError):
        SQLiteDocumentStore(path="x", indexed_meta_fields=["a'b"])


def test_retrievers(store, monkeypatch):
    rng = np.random.default_rng(5)
    store.write_documents([Document(id=f"{doc}#{i}", content=f"{doc} owls chunk {i}", embedding=unit(rng),
                                    meta={"doc_id": doc, "year": 2020 + i}) for doc in "ab" for i in range(3)])
    with pytest.raises(TypeError):
        SQLiteBM25Retriever(document_store=InMemoryDocumentStore())
    with pytest.raises(ValueError):
        SQLiteEmbeddingRetriever(document_store=store, top_k=0)
    scope_a = {"field": "meta.doc_id", "operator": "==", "value": "a"}
    recent = {"field": "meta.year", "operator": ">=", "value": 2021}
    bm25 = SQLiteBM25Retriever(document_store=store, filters=scope_a, top_k=10)
    assert {d.meta["doc_id"] for d in bm25.run(query="owls")["documents"]} == {"a"}
    replaced = bm25.run(query="owls", filters=recent)["documents"]  # REPLACE: the run filters alone
    assert {d.meta["year"] for d in replaced} == {2021, 2022} and {d.meta["doc_id"] for d in replaced} == {"a", "b"}
    merged = SQLiteBM25Retriever(document_store=store, filters=scope_a, filter_policy=FilterPolicy.MERGE)
    assert sorted(ids(merged.run(query="owls", filters=recent)["documents"])) == ["a#1", "a#2"]
    assert bm25.run(query="owls", top_k=0)["documents"] == []
    with pytest.raises(ValueError):
        bm25.run(query="owls", top_k=-1)
    dense = SQLiteEmbeddingRetriever(document_store=store, top_k=2)
    found = dense.run(query_embedding=unit(rng), filters=scope_a)["documents"]
    assert len(found) == 2 and {d.meta["doc_id"] for d in found} == {"a"} and found[0].score >= found[1].score
    assert dense.run(query_embedding=unit(rng), return_embedding=True)["documents"][0].embedding is not None

    # outside Pipeline.loads(allowed_modules=...), the nested store's module must be allowed explicitly
    monkeypatch.setenv("HAYSTACK_DESERIALIZATION_ALLOWLIST", "document_stores.*")
    for retriever in (bm25, merged, dense):
        data = retriever.to_dict()
        assert data["init_parameters"]["document_store"] == store.to_dict()
        again = type(retriever).from_dict(data)
        assert again.to_dict() == data and again.filter_policy == retriever.filter_policy


def test_pipeline_round_trip_and_run(store, corpus):
    docs, queries, embeddings = corpus
    store.write_documents(docs[:300])
    pipeline = Pipeline()
    pipeline.add_component("bm25_retriever", SQLiteBM25Retriever(document_store=store, top_k=20))
    pipeline.add_component("dense_retriever", SQLiteEmbeddingRetriever(document_store=store, top_k=20))
    pipeline.add_component("fusion", RankFusion(top_k=5))
    pipeline.connect("bm25_retriever.documents", "fusion.bm25_documents")
    pipeline.connect("dense_retriever.documents", "fusion.dense_documents")
    loaded = Pipeline.loads(pipeline.dumps(), allowed_modules=ALLOWED)
    assert loaded.to_dict() == pipeline.to_dict()
    assert loaded.get_component("bm25_retriever").document_store is not store  # its own connection, same file
    scope = {"field": "meta.doc_id", "operator": "in", "value": ["doc002", "doc010"]}
    inputs = {"bm25_retriever": {"query": queries[1], "filters": scope},
              "dense_retriever": {"query_embedding": embeddings[1], "filters": scope}}
    expected = pipeline.run(inputs)["fusion"]["documents"]
    found = loaded.run(inputs)["fusion"]["documents"]
    assert ids(found) == ids(expected) and len(found) == 5
    assert {d.meta["doc_id"] for d in found} <= {"doc002", "doc010"}


def test_embedded_backend_is_sqlite_and_imports_a_legacy_json_store(tmp_path):
    from configuration.settings import Settings
    from document_stores.json_file import JSONFileDocumentStore
    from loupe.stores import build_document_store, build_retrievers, persist, refresh

    settings = Settings(data_dir=tmp_path / "data", generator_kind="extractive").validate()
    legacy_path = settings.store_path.with_name("documents.json")
    legacy = JSONFileDocumentStore(path=str(legacy_path))
    legacy.write_documents([Document(id="old#0", content="an older owl survey", meta={"doc_id": "old"},
                                     embedding=[0.5, 0.5])])
    legacy.persist()
    bundle = build_retrievers(settings)
    assert isinstance(bundle.store, SQLiteDocumentStore) and settings.store_path.suffix == ".sqlite3"
    assert isinstance(bundle.bm25_retriever(), SQLiteBM25Retriever)
    assert isinstance(bundle.dense_retriever(), SQLiteEmbeddingRetriever)
    assert ids(bundle.store.filter_documents()) == ["old#0"]  # imported once, on first open
    assert not legacy_path.exists() and legacy_path.with_name("documents.json.imported").is_file()
    bundle.store.delete_documents(["old#0"])
    persist(bundle.store)
    refresh(bundle.store)
    assert build_document_store(settings).count_documents() == 0  # not imported again
