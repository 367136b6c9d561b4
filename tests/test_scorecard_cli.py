"""The scorecard as a team uses it, on the Kommineni study's real answers and verdicts (skipped without ../shared):
import two models' answers with their passages as JSONL, analyse them (the real MiniLM support maps and the
shipped suggester), draw an active and a uniform sample with `cli.py sample`, import each sample's human verdicts
under its own annotator, and read `cli.py scorecard --json`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

STUDY = REPO.parent / "shared" / "data" / "kommineni2024"
PAPERS = 3
MODELS = ("llama-3.1_70b_groq", "mixtral_8_22b")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not STUDY.exists(), reason="../shared (the study's data) is absent")]


def cli(data_dir, *args: str) -> str:
    env = {**os.environ, "LOUPE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "cli.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"cli.py {' '.join(args)}: {result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    return result.stdout


def study_rows() -> dict[str, dict[str, str]]:
    """{model: {record file stem: Yes/No}} for the first PAPERS papers of the study's decisions."""
    decided = {}
    for model in MODELS:
        rows = [row for row in csv.DictReader((STUDY / "human_decisions" / f"{model}.csv").open(encoding="utf-8"))
                if row["decision"].strip()]
        papers = sorted({row["Unique_ID"].split(".pdf_")[0] for row in rows})[:PAPERS]
        decided[model] = {row["Unique_ID"].removesuffix(".txt"): row for row in rows
                          if row["Unique_ID"].split(".pdf_")[0] in papers}
    return decided


def write_run(folder, model: str, rows: dict[str, dict[str, str]]):
    from review.record_files import name_parts, parse_text_record

    lines = []
    for stem, row in rows.items():
        record = parse_text_record(stem, (STUDY / "records" / "mixtral_8_22b" / f"{stem}.txt").read_text(encoding="utf-8"))
        doc_id, number = name_parts(stem)
        lines.append(json.dumps({"id": stem, "question": row["CQ"], "answer": row["CQ_Answer"],
                                 "contexts": [passage["text"] for passage in record.passages], "doc_id": doc_id,
                                 "question_id": f"Q{number}", "meta": {"model": model}}))
    path = folder / f"{model}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_verdicts(path, ids: list[str], rows: dict[str, dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Unique_ID", "decision"])
        for record_id in ids:
            writer.writerow([record_id, rows[record_id]["decision"]])


def test_samples_drawn_and_judged_give_the_scorecard(tmp_path):
    data_dir = tmp_path / "data"
    decided = study_rows()
    for model, rows in decided.items():
        cli(data_dir, "import", str(write_run(tmp_path, model, rows)), "--run", model)
    cli(data_dir, "analyze")
    budget = 20
    for model, rows in decided.items():
        for design in ("active", "uniform"):
            out = tmp_path / f"{model}-{design}.txt"
            args = ["sample", "--run", model, "--budget", str(budget), "--seed", "3", "--name", f"{model}-{design}",
                    "--out", str(out)] + (["--uniform"] if design == "uniform" else [])
            cli(data_dir, *args)
            ids = out.read_text(encoding="utf-8").split()
            assert len(ids) == budget == len(set(ids)) and set(ids) <= set(rows)
            write_verdicts(tmp_path / f"{model}-{design}.csv", ids, rows)
            cli(data_dir, "import", str(tmp_path / f"{model}-{design}.csv"), "--run", model,
                "--annotator", f"judge-{design}")
    first, second = MODELS
    for model, rows in decided.items():
        truth = sum(row["decision"].strip().lower() == "yes" for row in rows.values()) / len(rows)
        for design in ("active", "uniform"):
            card = json.loads(cli(data_dir, "scorecard", "--run", model, "--sample", f"{model}-{design}",
                                  "--annotator", f"judge-{design}", "--json"))
            assert card["run"] == model and card["records"] == len(rows) and card["human_n"] == budget
            assert card["method"] == ("ppi-active" if design == "active" else "ppi")
            low, high = card["ci"]
            assert 0 <= low <= card["estimate"] <= high <= 1
            assert abs(card["estimate"] - truth) < 0.35  # a 20-verdict sample of a ~80-record run
            assert card["human_only"]["ci"][0] <= card["human_only"]["estimate"] <= card["human_only"]["ci"][1]
            assert 0 < card["suggestion_only"] < 1 and card["suggestion_only_uncalibrated"] and card["suggester_model"]
            assert card["suggester"]["trained_on_run"]  # the shipped model learnt from these very papers
    compared = json.loads(cli(data_dir, "scorecard", "--run", first, "--sample", f"{first}-uniform",
                              "--annotator", "judge-uniform", "--compare", second, "--sample", f"{second}-uniform",
                              "--json"))
    difference = compared["difference"]
    shared = set(decided[first]) & set(decided[second])
    assert difference["method"] == "independent samples" and difference["pairs"] == len(shared)
    assert difference["ci"][0] <= difference["estimate"] <= difference["ci"][1]
    assert difference["sentence"].startswith(f"{first} is accepted")
    text = cli(data_dir, "scorecard", "--run", first, "--run", second)
    assert f"run {first}:" in text and f"run {second}:" in text and "human only" in text
