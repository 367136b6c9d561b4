"""Importing the Kommineni et al. records and human decisions, re-importing, and a corpus of broken files."""

from __future__ import annotations

import csv
import json
import re
import zipfile

import pytest
from sqlalchemy import func, select

import cli
from configuration.settings import Settings
from review.db import open_database
from review.models import Annotation, AnnotationVersion, Record
from tests.conftest import shared_path

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "data"


def stored(data_dir, run: str) -> dict[str, Record]:
    with open_database(Settings(data_dir=data_dir))() as session:
        return {r.external_id: r for r in session.scalars(select(Record).where(Record.run == run))}


def counts(data_dir) -> tuple[int, int, int]:
    with open_database(Settings(data_dir=data_dir))() as session:
        return tuple(session.scalar(select(func.count()).select_from(model))
                     for model in (Record, Annotation, AnnotationVersion))


def expected_prompt_record(text: str) -> dict:
    """The fields of a prompt record, worked out here independently of the importer."""
    preamble, rest = text.split("\n", 1)
    context, _, after_question = rest.rpartition("\nQuestion:")
    block, _, answer = after_question.partition("\nHelpful Answer:")
    query = re.search(r'Query: "(.*)"', block)
    return {
        "question": query.group(1).strip(),
        "answer": answer.strip(),
        "passages": [p for p in re.split(r"\n\s*\n", context.strip("\n")) if p.strip()],
        "prompt": block.strip(),
    }


def paragraphs(passages: list[dict]) -> list[str]:
    """The context's original paragraphs, from the boundaries each passage keeps."""
    return [passage["text"][start:end] for passage in passages for start, end in passage["paragraph_spans"]]


def test_prompt_and_answer_only_records_with_human_decisions(data_dir, capsys):
    root = shared_path("data", "kommineni2024")
    mixtral, llama = root / "records" / "mixtral_8_22b", root / "records" / "llama-3_70b_groq"
    decisions = root / "human_decisions" / "mixtral_8_22b.csv"
    assert cli.main(["import", str(mixtral), str(decisions), "--annotator", "kommineni"]) == 0
    assert cli.main(["import", str(llama), "--questions", str(root / "CQs.txt")]) == 0
    capsys.readouterr()

    records = stored(data_dir, "mixtral_8_22b")
    files = sorted(mixtral.glob("*.txt"))
    assert len(records) == len(files) == 1680
    two_answers = [f for f in files if f.read_text(encoding="utf-8").count("Helpful Answer:") == 2]
    for path in files[::97] + two_answers:
        record, expected = records[path.stem], expected_prompt_record(path.read_text(encoding="utf-8"))
        doc, number = re.match(r"Publication_(.+)\.pdf_CQ(\d+)$", path.stem).groups()
        assert (record.doc_id, record.question_id) == (doc, f"Q{number}")
        assert record.question == expected["question"]
        assert record.answer == expected["answer"]
        assert paragraphs(record.passages) == expected["passages"]
        assert len(record.passages) <= len(expected["passages"]), "fragments are merged into passages"
        assert record.prompt == expected["prompt"]
        assert record.generator_model == "mixtral_8_22b" and record.support is None, "support is deferred"

    questions = (root / "CQs.txt").read_text(encoding="utf-8").splitlines()
    answer_only = stored(data_dir, "llama-3_70b_groq")
    assert len(answer_only) == 1680
    for path in sorted(llama.glob("*.txt"))[::113]:
        record = answer_only[path.stem]
        number = int(re.search(r"_CQ(\d+)$", path.stem).group(1))
        text = path.read_text(encoding="utf-8")
        body = re.sub(r"^\s*Answer:+\s*(Answer:)?", "", text).strip()
        assert record.question == questions[number - 1].strip()
        assert record.answer == body and record.passages == []
        assert record.meta["context_recorded"] is False

    with decisions.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    decided = {row["Unique_ID"].removesuffix(".txt"): row["decision"].strip() for row in rows if row["decision"].strip()}
    with open_database(Settings(data_dir=data_dir))() as session:
        verdicts = {record_id.split("/", 1)[1]: (verdict, reason) for record_id, verdict, reason in session.execute(
            select(Annotation.record_id, Annotation.verdict, Annotation.reason).where(Annotation.annotator == "kommineni"))}
    assert len(verdicts) == len(decided) < len(rows), "blank decisions are skipped"
    assert all(verdicts[rid] == (("accept", None) if label == "Yes" else ("reject", "other"))
               for rid, label in decided.items())

    # another model's decisions go to its own run (named after the file), which holds none of these records:
    # counted and reported, not fatal, and nothing is written
    other = root / "human_decisions" / "gemma2-9b-it_groq.csv"
    before = counts(data_dir)
    assert cli.main(["import", str(other), "--annotator", "kommineni"]) == 0
    out = capsys.readouterr().out
    named = sum(1 for row in csv.DictReader(other.open(encoding="utf-8")) if row["decision"].strip())
    assert f"{named} naming records not in this run" in out and "were not imported" in out
    assert counts(data_dir) == before

    before = counts(data_dir)
    assert cli.main(["import", str(mixtral), str(decisions), "--annotator", "kommineni"]) == 0
    out = capsys.readouterr().out
    assert "1680 unchanged" in out and f"{len(decided)} unchanged" in out
    assert counts(data_dir) == before, "re-importing changes nothing"


def write_broken_corpus(folder):
    good = ("Use the context.\n\nSeeds were fixed to 42.\n\nQuestion: %INSTRUCTIONS:\nQuery: \"Which seed?\"\n\n"
            "Helpful Answer:\nThe seed was 42.\n")
    (folder / "good.txt").write_text(good, encoding="utf-8")
    (folder / "truncated.txt").write_text(good.split("Helpful")[0], encoding="utf-8")
    (folder / "no_markers.txt").write_text("Just some notes about seeds.\n", encoding="utf-8")
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("Answer:::\nLa graine était 42.\n".encode("latin-1"))
    (folder / "utf16.txt").write_bytes(good.encode("utf-16"))
    (folder / "garbage.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4 not a record")
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 cut short")
    lines = [json.dumps({"id": "j1", "question": "Q?", "answer": "A.", "contexts": ["c", {"text": "d", "meta": {"page": 2}}]}),
             "{not json", json.dumps({"id": "j2", "question": "Q?"}),
             json.dumps({"id": "j1", "question": "Again?", "answer": "B."})]
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with zipfile.ZipFile(folder / "more.zip", "w") as zipped:
        zipped.writestr("inner/zipped.txt", good.replace("42", "7"))


def test_broken_files_are_reported_per_file_and_the_rest_imported(data_dir, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_broken_corpus(corpus)
    assert cli.main(["import", str(corpus), "--run", "mixed"]) == 1
    captured = capsys.readouterr()
    problems = {line.split(" ", 1)[1] for line in captured.err.splitlines() if line.startswith(("FAILED", "SKIPPED"))}

    def problem(name: str) -> str:
        return next(p for p in problems if re.search(rf"{re.escape(name)}(:\d+)?: ", p))

    assert "truncated" in problem("truncated.txt")
    assert "neither a prompt record" in problem("no_markers.txt")
    assert "empty" in problem("empty.txt")
    assert "not UTF-8" in problem("latin1.txt") and "not UTF-8" in problem("utf16.txt")
    assert problem("garbage.txt")
    assert "unsupported file type .pdf" in problem("notes.pdf")
    assert "not a readable zip" in problem("broken.zip")
    assert "records.jsonl:2: invalid JSON" in problem("records.jsonl:2")
    assert "'answer' is missing" in problem("records.jsonl:3")
    assert "repeats" in problem("records.jsonl:4")

    records = stored(data_dir, "mixed")
    assert sorted(records) == ["good", "j1", "zipped"]
    assert records["good"].passages == [{"text": "Seeds were fixed to 42.", "paragraph_spans": [[0, 23]]}] and records["good"].answer == "The seed was 42."
    assert records["j1"].passages == [{"text": "c"}, {"text": "d", "meta": {"page": 2}, "page": 2}]
    assert records["zipped"].answer == "The seed was 7."
    assert "3 added" in captured.out

    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "empty.txt").write_text("", encoding="utf-8")
    assert cli.main(["import", str(nothing)]) == 2


def test_changed_file_replaces_unreviewed_record_keeps_reviewed_one(data_dir, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    lines = [{"id": i, "question": "Which seed?", "answer": "42.", "contexts": ["Seed 42."]} for i in ("a", "b")]
    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert cli.main(["import", str(path), "--run", "r"]) == 0
    verdicts = folder / "verdicts.jsonl"
    verdicts.write_text(json.dumps({"record_id": "a", "verdict": "correct", "corrected_answer": "Seed 42."}) + "\n",
                        encoding="utf-8")
    assert cli.main(["import", str(verdicts), "--run", "r", "--annotator", "ann"]) == 0
    path.write_text("".join(json.dumps({**line, "answer": "Seven."}) + "\n" for line in lines), encoding="utf-8")
    assert cli.main(["import", str(path), "--run", "r"]) == 1
    captured = capsys.readouterr()
    assert "1 replaced" in captured.out and "1 kept" in captured.out and "already reviewed" in captured.err
    records = stored(data_dir, "r")
    assert records["a"].answer == "42." and records["b"].answer == "Seven."


def test_label_map_errors_are_clear(data_dir, tmp_path, capsys):
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("Unique_ID,decision\nx,Yes\n", encoding="utf-8")
    assert cli.main(["import", str(csv_path), "--annotator", "a", "--map", "Maybe=perhaps"]) == 2
    assert "expected LABEL=accept|correct|reject" in capsys.readouterr().err
    assert cli.main(["import", str(csv_path)]) == 2, "nothing could be imported"
    assert "give --annotator NAME" in capsys.readouterr().err
