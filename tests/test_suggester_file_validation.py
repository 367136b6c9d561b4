"""An untrusted suggester file in the data directory (`models/suggester.json`) is checked whole when it loads: a bad
one is refused with one message naming the file and what is wrong, the shipped model suggests instead, and no
export ever holds a NaN or an infinite number. Each crafted file goes through the real CLI (`cli.main`): import,
analyze (real support maps), export."""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest

from loupe.suggestion import MAX_MODEL_BYTES, SHIPPED_MODEL, ModelFileError, Suggester
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

SHIPPED = SHIPPED_MODEL.read_text(encoding="utf-8")


def shipped_with(**changes) -> str:
    """The shipped model's JSON with some keys replaced (as Python values, NaN written as JSON's NaN token)."""
    return json.dumps({**json.loads(SHIPPED), **changes})


def one_big_tree(nodes: int) -> str:
    """The shipped model with its first tree replaced by a well-formed chain of `nodes` nodes."""
    data = json.loads(SHIPPED)
    inner = nodes // 2
    left = [2 * i + 1 for i in range(inner)] + [-1] * (nodes - inner)
    right = [2 * i + 2 for i in range(inner)] + [-1] * (nodes - inner)
    data["trees"]["trees"][0] = {"feature": [0] * nodes, "threshold": [0.5] * nodes, "left": left, "right": right,
                                 "value": [0.0] * nodes}
    return json.dumps(data)


CRAFTED = {  # name: (file text, what the message must say)
    "nan-calibration": (shipped_with(calibration={"a": math.nan, "b": 0.1}), "calibration.a is nan"),
    "nan-mean": (shipped_with(mean=[math.nan] * 36), r"mean\[0\] is nan"),
    "infinite-coefficient": (shipped_with(coefficients=[math.inf] * 36), r"coefficients\[0\] is inf"),
    "400-digit-intercept": (SHIPPED.replace('"intercept": ', '"intercept": ' + "9" * 400 + ", \"was\": ", 1),
                            "intercept is an integer of 400 digits"),
    "deeply-nested": ('{"format": "loupe-suggester/2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                      "brackets nest 100001 deep"),
    "zero-scale": (shipped_with(scale=[0.0] * 36), "scales must be positive"),
    "negative-threshold": (shipped_with(threshold=-0.2), "threshold must lie between 0 and 1"),
    "nan-threshold": (shipped_with(threshold=math.nan), "threshold is nan"),
    "wrong-sizes": (shipped_with(mean=[0.0] * 35), "one value per feature"),
    "huge-tree": (one_big_tree(100_001), "trees of up to 100001 nodes"),
    "too-large": ('{"format": "loupe-suggester/2", "pad": "' + "x" * (MAX_MODEL_BYTES + 1) + '"}',
                  "bytes; a suggester model is at most"),
    "unknown-format": (json.dumps({"format": "pickle"}), "not a suggester model"),
}


def strict_json(line: str):
    """json.loads refusing NaN and Infinity, as strict parsers (and JSON itself) do."""
    def refuse(token: str):
        raise ValueError(f"non-finite number {token} in the export")
    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A data directory with three imported records."""
    import cli

    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LOUPE_AUTH", raising=False)
    lines = [
        json.dumps({"id": "r1", "question": "Which optimizer was used?", "answer": "The model was trained with Adam.",
                    "contexts": [{"text": "We trained the network with the Adam optimizer.", "meta": {"score": 0.8}}]}),
        json.dumps({"id": "r2", "question": "Which GPU?", "answer": "The provided context does not contain this "
                    "information.", "contexts": ["Recordings were collected at dawn."]}),
        json.dumps({"id": "r3", "question": "Which loss?", "answer": "Cross-entropy loss was minimised.",
                    "contexts": ["The loss was cross-entropy, minimised with SGD."]}),
    ]
    (tmp_path / "run.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli.main(["import", str(tmp_path / "run.jsonl"), "--run", "crafted"]) == 0
    (tmp_path / "data" / "models").mkdir(parents=True)
    return tmp_path / "data"


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_suggester_file_is_refused_with_its_reason_and_the_shipped_model_suggests(name, data_dir, capsys):
    import cli

    text, reason = CRAFTED[name]
    model_file = data_dir / "models" / "suggester.json"
    model_file.write_text(text, encoding="utf-8")

    assert cli.main(["analyze"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    note = [line for line in err.splitlines() if line.startswith("NOTE:")]
    assert len(note) == 1, err
    assert f"the suggester file {model_file} cannot be used" in note[0]
    assert "the shipped model" in note[0] and "suggests instead" in note[0]
    assert re.search(reason, note[0]), note[0]
    assert "computed for 3 records" in out

    shipped = Suggester.load().name
    for fmt in ("jsonl", "csv", "parquet"):
        target = data_dir / f"export.{fmt}"
        assert cli.main(["export", "--format", fmt, "--out", str(target)]) == 0
    rows = [strict_json(line) for line in (data_dir / "export.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert row["suggestion"]["model"] == shipped
        assert 0.0 <= row["suggestion"]["p_accept"] <= 1.0
    table = list(csv.DictReader(io.StringIO((data_dir / "export.csv").read_text(encoding="utf-8"))))
    assert all(0.0 <= float(row["suggestion_p_accept"]) <= 1.0 for row in table)
    assert not any(token in cell for row in table for cell in row.values() for token in ("NaN", "Infinity"))
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    frame = pq.read_table(data_dir / "export.parquet")
    for column in frame.column_names:
        if frame.schema.field(column).type in ("double", "float"):
            assert not pc.any(pc.is_nan(frame[column])).as_py(), column


def test_the_shipped_model_passes_the_checks_and_a_fixed_file_is_used_again(data_dir, capsys):
    import cli

    model_file = data_dir / "models" / "suggester.json"
    model_file.write_text(CRAFTED["nan-calibration"][0], encoding="utf-8")
    assert cli.main(["analyze"]) == 0
    assert "NOTE:" in capsys.readouterr().err
    retrained = json.loads(SHIPPED) | {"name": "team-own-model"}
    model_file.write_text(json.dumps(retrained), encoding="utf-8")
    assert cli.main(["analyze"]) == 0
    out, err = capsys.readouterr()
    assert "NOTE:" not in err and "computed for 3 records" in out, "re-suggested by the fixed file's model"


def test_loading_checks_size_and_nesting_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "suggester.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    parsed = []
    monkeypatch.setattr("loupe.suggestion.json.loads", lambda *a, **k: parsed.append(1))
    with pytest.raises(ModelFileError, match=f"{path} cannot be used: its brackets nest 100000 deep"):
        Suggester.load(path)
    path.write_text(" " * (MAX_MODEL_BYTES + 1), encoding="utf-8")
    with pytest.raises(ModelFileError, match="is at most"):
        Suggester.load(path)
    assert parsed == [], "neither file was handed to the JSON parser"


def test_no_export_writes_a_non_finite_number(db_url, sessions, tmp_path):
    """Numbers stored before the checks (a NaN suggestion of a broken model, an infinite score) export as null."""
    if db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL refuses to store a non-finite number in JSON in the first place")
    from configuration.settings import Settings
    from review.access import Principal
    from review.export import export_bytes
    from review.records import apply_suggestion, get_record, record_from_answer
    from tests.test_review_db import make_answer

    admin = Principal("admin", "admin")
    with sessions() as session:
        record = record_from_answer(session, answer=make_answer(), settings=Settings(data_dir=tmp_path),
                                    run="r", record_id="r/1", external_id="1")
        record.passages = [{**record.passages[0], "score": math.inf}, *record.passages[1:]]
        apply_suggestion(get_record(session, record_id="r/1"), {"verdict": "reject", "p_accept": math.nan,
                                                                  "reasons": [], "model": "broken"})
        session.commit()
        exports = {fmt: export_bytes(session, fmt, actor=admin)[0] for fmt in ("jsonl", "csv")}
    [row] = [strict_json(line) for line in exports["jsonl"].decode().splitlines()]
    assert row["suggestion"] is None and row["passages"][0]["score"] is None
    assert not any(token in exports["csv"].decode() for token in ("NaN", "Infinity", "nan", "inf,"))
