"""Ingestion through the CLI and the Ingester: formats, metadata, idempotence, replacement, bad files."""

from __future__ import annotations

import json
import shutil

import pytest

import cli
from loupe.ingest import Ingester
from loupe.stores import build_document_store
from tests.conftest import DEMO_CORPUS, shared_path
from tests.pdf_factory import corrupt_pdf, encrypted_pdf, text_pdf

pytestmark = pytest.mark.slow


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOUPE_GENERATOR_KIND", "extractive")
    monkeypatch.setenv("LOUPE_CHUNK_WORDS", "40")
    monkeypatch.setenv("LOUPE_CHUNK_OVERLAP_WORDS", "10")
    return tmp_path


def stored_chunks(tmp_path):
    """The chunks as a new process sees them: read back from the saved store, embeddings included."""
    from configuration.settings import load_settings

    return build_document_store(load_settings()).filter_documents()


def test_every_format_keeps_chunk_metadata(data_env, capsys):
    corpus = data_env / "corpus"
    (corpus / "nested").mkdir(parents=True)
    (corpus / "methods.md").write_text("# Owl Survey Methods\n\nWe trained a CNN. It used PyTorch.\n", encoding="utf-8")
    (corpus / "nested" / "notes.txt").write_text("Field notes on bats.\nThe seed was fixed to 7.\n", encoding="utf-8")
    page_one = " ".join(f"Frogs were heard at pond {i}." for i in range(12))
    (corpus / "paper.pdf").write_bytes(text_pdf([page_one, "Page two is about toads."], "Frog Paper"))
    rows = [
        {"id": "j1", "title": "Beetles", "text": "Beetles were counted by hand.", "meta": {"year": 2021}},
        {"id": "j2", "title": "", "text": "Moths were attracted to light traps."},
    ]
    (corpus / "more.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")

    assert cli.main(["ingest", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "5 added, 0 replaced, 0 unchanged, 0 failed" in out

    chunks = {chunk.id: chunk for chunk in stored_chunks(data_env)}
    assert {"methods#0", "notes#0", "paper#0", "paper#1", "j1#0", "j2#0"} <= set(chunks)
    assert chunks["methods#0"].meta["title"] == "Owl Survey Methods"
    assert chunks["paper#0"].meta["title"] == "Frog Paper"
    last_pdf_chunk = max((c for c in chunks.values() if c.meta["doc_id"] == "paper"), key=lambda c: c.meta["chunk_index"])
    assert last_pdf_chunk.meta["page_end"] == 2 and "toads" in last_pdf_chunk.content
    assert chunks["paper#0"].meta["page"] == 1
    assert chunks["j1#0"].meta["year"] == 2021 and chunks["j1#0"].meta["title"] == "Beetles"
    assert chunks["j2#0"].meta["title"] == "Moths were attracted to light traps."
    assert chunks["notes#0"].meta["source"].endswith("nested/notes.txt")
    for chunk in chunks.values():
        assert {"doc_id", "title", "source", "chunk_index", "char_start", "char_end", "page"} <= set(chunk.meta)
        assert len(chunk.embedding) == 384


def test_reingest_is_idempotent_and_changes_replace(data_env, capsys):
    corpus = data_env / "corpus"
    corpus.mkdir()
    long_text = " ".join(f"Sentence {i} describes the owl survey." for i in range(30))
    (corpus / "owls.md").write_text(long_text, encoding="utf-8")
    (corpus / "bats.md").write_text("Bats were recorded with ultrasonic detectors.", encoding="utf-8")
    assert cli.main(["ingest", str(corpus)]) == 0
    before = {c.id: c for c in stored_chunks(data_env)}
    capsys.readouterr()

    assert cli.main(["ingest", str(corpus)]) == 0
    assert "0 added, 0 replaced, 2 unchanged" in capsys.readouterr().out
    after = {c.id: c for c in stored_chunks(data_env)}
    assert after.keys() == before.keys()
    assert all(after[key].content == before[key].content for key in before)

    (corpus / "owls.md").write_text("Owls were counted at dusk. The survey used one observer.", encoding="utf-8")
    assert cli.main(["ingest", str(corpus / "owls.md")]) == 0
    out = capsys.readouterr().out
    assert "0 added, 1 replaced, 0 unchanged" in out
    assert {c.meta["doc_id"] for c in stored_chunks(data_env)} == {"owls", "bats"}
    assert len([c for c in stored_chunks(data_env) if c.meta["doc_id"] == "owls"]) == 1
    owls = [c for c in stored_chunks(data_env) if c.meta["doc_id"] == "owls"]
    assert owls[0].content.startswith("Owls were counted at dusk.")


def test_bad_files_are_named_and_the_rest_proceed(data_env, capsys):
    corpus = data_env / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text("A good document about herons.", encoding="utf-8")
    (corpus / "corrupt.pdf").write_bytes(corrupt_pdf())
    (corpus / "locked.pdf").write_bytes(encrypted_pdf("Secret heron counts."))
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "garbage.txt").write_bytes(bytes(range(256)) * 8)
    (corpus / "latin1.txt").write_bytes("Café data from the Eifel region.".encode("latin-1"))
    (corpus / "notpdf.pdf").write_bytes(b"just some text pretending")
    (corpus / "table.docx").write_bytes(b"PK\x03\x04")
    (corpus / "bad.jsonl").write_text('{"id": "ok1", "text": "Fine line."}\n{broken\n{"id": "x"}\n', encoding="utf-8")

    code = cli.main(["ingest", str(corpus), str(data_env / "missing.pdf")])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err
    expectations = {
        "corrupt.pdf": "corrupt PDF",
        "locked.pdf": "encrypted PDF",
        "empty.txt": "empty file",
        "garbage.txt": "binary data, not text",
        "latin1.txt": "not UTF-8 text (byte 0xe9 at offset 3)",
        "notpdf.pdf": "not a PDF",
        "table.docx": "unsupported file type .docx",
        "bad.jsonl:2": "invalid JSON",
        "bad.jsonl:3": "has no \"text\"",
        "missing.pdf": "no such file or folder",
    }
    for name, reason in expectations.items():
        assert any(name in line and reason in line for line in errors.splitlines()), (name, errors)
    assert "2 added, 0 replaced, 0 unchanged, 10 failed" in captured.out
    assert {c.meta["doc_id"] for c in stored_chunks(data_env)} == {"good", "ok1"}


def test_nothing_ingested_exits_2_and_keeps_store(data_env, capsys):
    (data_env / "a.md").write_text("Kept document about storks.", encoding="utf-8")
    assert cli.main(["ingest", str(data_env / "a.md")]) == 0
    (data_env / "empty.md").write_text("   \n", encoding="utf-8")
    assert cli.main(["ingest", str(data_env / "empty.md")]) == 2
    assert "empty file" in capsys.readouterr().err
    assert [c.meta["doc_id"] for c in stored_chunks(data_env)] == ["a"]


def test_duplicate_document_ids_in_one_run_are_reported(data_env, capsys):
    (data_env / "one").mkdir()
    (data_env / "two").mkdir()
    (data_env / "one" / "paper.md").write_text("First paper text.", encoding="utf-8")
    (data_env / "two" / "paper.txt").write_text("Second paper text.", encoding="utf-8")
    assert cli.main(["ingest", str(data_env / "one"), str(data_env / "two")]) == 1
    assert "document id 'paper' is already taken" in capsys.readouterr().err


def test_shared_biss_pdfs(tmp_path, settings):
    pdfs = sorted(shared_path("data", "biss_abstracts").glob("*.pdf"))[:6]
    corpus = tmp_path / "biss"
    corpus.mkdir()
    for pdf in pdfs:
        shutil.copy(pdf, corpus)
    seen = []
    report = Ingester(settings, build_document_store(settings)).ingest([corpus], progress=lambda *a: seen.append(a))
    assert report.failures == [], report.failures
    assert len(report.added) == len(pdfs) and report.chunks_written >= len(pdfs)
    assert seen[-1][0] == seen[-1][1] == len(pdfs)
    store = build_document_store(settings)  # a new process would see the same: it reads the saved file
    chunks = store.filter_documents()
    assert {c.meta["doc_id"] for c in chunks} == {p.stem for p in pdfs}
    assert max(c.meta["page"] for c in chunks) >= 2
    for chunk in chunks:
        assert chunk.content.strip() and chunk.meta["title"]


def test_demo_corpus_ingests_cleanly(settings):
    report = Ingester(settings, build_document_store(settings)).ingest([DEMO_CORPUS])
    assert report.exit_code == 0 and len(report.added) >= 5
