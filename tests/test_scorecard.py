"""The scorecard's statistics (loupe.estimates, the real ppi_py), samples stored and used (review.sampling), the
estimate per run, question and document, runs compared on paired records, and the honest edges (review.scorecard),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import delete, select, update

from configuration.settings import Settings
from loupe.estimates import (
    active_probabilities,
    human_only,
    prediction_powered,
    systematic_sample,
    uniform_probabilities,
    verdicts_for_half_width,
)
from review.annotations import record_verdict
from review.errors import ReviewError
from review.importer import Importer
from review.models import Record, SampleUnit
from review.queue import QueueFilter, queue_entries, sample_sort
from review.sampling import draw_sample, sample_units
from review.scorecard import compare_runs, difference_sentence, run_scorecard
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401


def population(rng: np.random.Generator, size: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated, informative predictions and labels drawn from them: a run whose truth we know."""
    p_accept = 1 / (1 + np.exp(-rng.normal(-0.5, 2.2, size)))
    return rng.binomial(1, p_accept).astype(float), p_accept


@pytest.mark.parametrize("design", ["uniform", "active"])
def test_intervals_cover_the_known_rate_about_95_percent_of_the_time(design):
    rng = np.random.default_rng(7)
    labels, p_accept = population(rng)
    truth = labels.mean()
    probabilities = active_probabilities(p_accept, 60) if design == "active" else uniform_probabilities(400, 60)
    covered, widths, human_widths = 0, [], []
    for _ in range(400):
        chosen = systematic_sample(probabilities, rng)
        weights = probabilities[chosen] if design == "active" else None
        estimate = prediction_powered(labels[chosen], p_accept[chosen], p_accept, weights)
        human = human_only(labels[chosen], weights)
        covered += estimate.ci[0] <= truth <= estimate.ci[1]
        widths.append(estimate.ci[1] - estimate.ci[0])
        human_widths.append(human.ci[1] - human.ci[0])
    assert 0.91 <= covered / 400 <= 0.99
    assert np.mean(widths) < 0.9 * np.mean(human_widths)  # the predictions carry information: narrower


def test_a_useless_predictor_keeps_the_interval_valid():
    rng = np.random.default_rng(3)
    labels, _ = population(rng)
    truth = labels.mean()
    noise = rng.uniform(0, 1, labels.size)  # unrelated to the labels
    covered = 0
    for _ in range(300):
        chosen = systematic_sample(uniform_probabilities(labels.size, 60), rng)
        estimate = prediction_powered(labels[chosen], noise[chosen], noise)
        covered += estimate.ci[0] <= truth <= estimate.ci[1]
    assert covered / 300 >= 0.9


def test_systematic_sampling_draws_exactly_the_budget_with_the_given_probabilities():
    rng = np.random.default_rng(11)
    p_accept = np.linspace(0.01, 0.99, 50)
    probabilities = active_probabilities(p_accept, 10)
    assert probabilities.sum() == pytest.approx(10)
    assert probabilities.max() <= 1 and probabilities.min() > 0
    assert probabilities[25] > probabilities[0]  # uncertain suggestions are likelier to be drawn
    counts = np.zeros(50)
    for _ in range(4000):
        chosen = systematic_sample(probabilities, rng)
        assert len(chosen) == 10 == len(set(chosen.tolist()))
        counts[chosen] += 1
    assert np.abs(counts / 4000 - probabilities).max() < 0.035


def test_probabilities_above_one_are_capped_and_the_budget_kept():
    p_accept = np.array([0.5] * 3 + [0.999] * 97)
    probabilities = active_probabilities(p_accept, 20, uniform_share=0.0)
    assert probabilities[:3] == pytest.approx(1.0)
    assert probabilities.sum() == pytest.approx(20)


def test_bad_budgets_are_refused_with_their_range():
    with pytest.raises(ValueError, match="between 1 and the run's 5 records"):
        uniform_probabilities(5, 6)
    with pytest.raises(ValueError, match="no records"):
        active_probabilities([], 1)


def test_more_verdicts_for_five_points_follows_the_variance():
    rng = np.random.default_rng(5)
    labels = rng.binomial(1, 0.5, 60).astype(float)
    estimate = human_only(labels)
    more = verdicts_for_half_width(estimate)
    # for a rate near 50% about 384 verdicts give ±5 points
    assert 250 <= more + 60 <= 450
    assert verdicts_for_half_width(None) is None


# --- the review database --------------------------------------------------------------------------------------

def import_run(sessions, tmp_path, run: str, size: int = 40):  # noqa: F811
    """`size` records: ten questions (Q0-Q9) of each document (doc0, doc1, …)."""
    lines = [json.dumps({"id": f"{run}-{n}", "question": f"Question {n % 10}?", "answer": f"Answer {n}.",
                         "contexts": ["A passage."], "doc_id": f"doc{n // 10}", "question_id": f"Q{n % 10}"})
             for n in range(size)]
    path = tmp_path / f"{run}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    Importer(sessions, actor=ADMIN, run=run).import_paths([path])


def suggest(sessions, run: str, p_accept) -> None:  # noqa: F811
    """Give the run's records (in id order) these p_accept values, as analysis would store them."""
    with sessions() as session:
        ids = session.scalars(select(Record.id).where(Record.run == run).order_by(Record.id)).all()
        for record_id, p in zip(ids, p_accept):
            session.execute(update(Record).where(Record.id == record_id).values(
                p_reject=1 - float(p), suggestion={"verdict": "accept" if p >= 0.5 else "reject",
                                                   "p_accept": float(p), "reasons": [], "model": "test-model"}))
        session.commit()


def judge(session, record_id: str, verdict: str, annotator: str = "ann") -> None:
    record_verdict(session, actor=ADMIN, record_id=record_id, annotator=annotator, verdict=verdict,
                   reason="wrong" if verdict == "reject" else None,
                   corrected_answer="Fixed." if verdict == "correct" else None)


def settings_for(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_a_sample_is_stored_whole_and_reproducible(sessions, tmp_path):  # noqa: F811
    import_run(sessions, tmp_path, "r")
    suggest(sessions, "r", np.linspace(0.02, 0.98, 40))
    with sessions() as session:
        judge(session, "r/r-3", "accept")  # verdicts already given do not take records out of the design
        first = draw_sample(session, actor=ADMIN, run="r", budget=8, seed=1, name="s1")
        again = draw_sample(session, actor=ADMIN, run="r", budget=8, seed=1, name="s1-again")
        other = draw_sample(session, actor=ADMIN, run="r", budget=8, seed=2, name="s2", method="uniform")
        units = sample_units(session, "s1")
        with pytest.raises(ReviewError, match="exists already"):
            draw_sample(session, actor=ADMIN, run="r", budget=8, seed=3, name="s1")
    assert first.record_ids == again.record_ids and first.record_ids != other.record_ids
    assert len(units) == 40 and sum(unit.selected for unit in units) == 8
    assert sum(unit.probability for unit in units) == pytest.approx(8)
    assert {unit.external_id for unit in units if unit.selected} == set(first.record_ids)
    assert sorted(unit.position for unit in units if unit.selected) == list(range(8))
    with sessions() as session:
        order = queue_entries(session, QueueFilter(annotator="ann", runs=("r",), sort=sample_sort("s1")), actor=ADMIN)
    assert [record_id.split("/", 1)[1] for record_id, _ in order] == first.record_ids


def test_the_estimate_weights_each_verdict_by_its_stored_probability(sessions, tmp_path):  # noqa: F811
    import_run(sessions, tmp_path, "r")
    p_accept = np.linspace(0.02, 0.98, 40)
    suggest(sessions, "r", p_accept)
    with sessions() as session:
        draw_sample(session, actor=ADMIN, run="r", budget=12, seed=4, name="act")
        units = {unit.record_id: unit for unit in sample_units(session, "act")}
        chosen = sorted(record_id for record_id, unit in units.items() if unit.selected)
        verdicts = {record_id: ("accept" if i % 3 else "reject") for i, record_id in enumerate(chosen)}
        for record_id, verdict in verdicts.items():
            judge(session, record_id, verdict)
        judge(session, next(r for r in units if r not in verdicts), "accept")  # outside the sample
        card = run_scorecard(session, settings_for(tmp_path), "r", actor=ADMIN, annotator="ann", sample="act")
    ordered = sorted(units)
    predictions = {record_id: p for record_id, p in zip(ordered, p_accept)}
    expected = prediction_powered([int(verdicts[r] == "accept") for r in chosen], [predictions[r] for r in chosen],
                                  [predictions[r] for r in ordered], [units[r].probability for r in chosen])
    assert card["method"] == "ppi-active" and card["human_n"] == 12
    assert card["estimate"] == pytest.approx(expected.estimate, abs=1e-4)
    assert card["ci"] == pytest.approx(list(expected.ci), abs=1e-4)
    unweighted = prediction_powered([int(verdicts[r] == "accept") for r in chosen], [predictions[r] for r in chosen],
                                    [predictions[r] for r in ordered])
    assert abs(unweighted.estimate - expected.estimate) > 1e-3  # the weights changed the estimate
    assert card["all_verdicts"]["judged"] == 13
    assert any("outside the sample" in note for note in card["notes"])


def test_without_a_sample_every_judged_record_is_a_uniform_sample_and_it_says_so(sessions, tmp_path):  # noqa: F811
    import_run(sessions, tmp_path, "r")
    suggest(sessions, "r", np.full(40, 0.6))
    with sessions() as session:
        for n in range(20):
            judge(session, f"r/r-{n}", "accept" if n % 2 else "correct")
        card = run_scorecard(session, settings_for(tmp_path), "r", actor=ADMIN)
    assert card["method"] == "ppi" and card["human_n"] == 20
    assert card["human_only"]["estimate"] == pytest.approx(0.5)
    assert card["suggestion_only"] == 0.6 and card["suggestion_only_records"] == 40
    assert card["suggestion_only_uncalibrated"] is True
    assert any("as if it were a uniform random sample" in note for note in card["notes"])
    assert len(card["per_question"]) == 10 and all(cell["small"] for cell in card["per_question"])
    assert {cell["key"] for cell in card["per_document"]} == {"doc0", "doc1", "doc2", "doc3"}
    json.dumps(card, allow_nan=False)


def test_no_verdicts_gives_only_the_uncalibrated_suggestion_figure(sessions, tmp_path):  # noqa: F811
    import_run(sessions, tmp_path, "r")
    suggest(sessions, "r", np.full(40, 0.3))
    with sessions() as session:
        card = run_scorecard(session, settings_for(tmp_path), "r", actor=ADMIN)
    assert card["estimate"] is None and card["ci"] is None and card["method"] is None
    assert card["suggestion_only"] == pytest.approx(0.3) and card["suggestion_only_uncalibrated"]
    assert any("uncalibrated" in note for note in card["notes"])


def test_records_without_suggestions_are_counted_and_analyze_is_offered(sessions, tmp_path):  # noqa: F811
    import_run(sessions, tmp_path, "r")
    with sessions() as session:
        for n in range(10):
            judge(session, f"r/r-{n}", "accept" if n < 7 else "reject")
        card = run_scorecard(session, settings_for(tmp_path), "r", actor=ADMIN)
    assert card["method"] == "human" and card["unanalysed"] == 40
    assert card["estimate"] == pytest.approx(0.7)
    assert any("cli.py analyze --run r" in note for note in card["notes"])


def test_a_sample_says_what_deleted_and_reimported_records_took_away(sessions, tmp_path):  # noqa: F811
    import_run(sessions, tmp_path, "r")
    suggest(sessions, "r", np.full(40, 0.5))
    with sessions() as session:
        drawn = draw_sample(session, actor=ADMIN, run="r", budget=10, seed=9, name="u", method="uniform")
        gone, changed = f"r/{drawn.record_ids[0]}", f"r/{drawn.record_ids[1]}"
        session.execute(delete(Record).where(Record.id == gone))
        session.execute(update(Record).where(Record.id == changed).values(source_hash="other"))
        session.commit()
        for record_id in drawn.record_ids[2:]:
            judge(session, f"r/{record_id}", "accept")
        card = run_scorecard(session, settings_for(tmp_path), "r", actor=ADMIN, annotator="ann", sample="u")
        assert session.scalar(select(SampleUnit.id).where(SampleUnit.record_id == gone)) is not None
    assert card["lost"] == {"deleted": 1, "reimported": 1}
    assert card["human_n"] == 8 and card["records"] == 38
    assert any("lost 1 records deleted and 1 re-imported" in note for note in card["notes"])


def test_the_shipped_suggester_says_it_was_trained_on_the_study_papers(sessions, tmp_path):  # noqa: F811
    line = json.dumps({"id": "a", "question": "Q?", "answer": "A.", "contexts": ["P."],
                       "doc_id": "10.1016_j.ecoinf.2021.101314"})
    (tmp_path / "study.jsonl").write_text(line + "\n", encoding="utf-8")
    Importer(sessions, actor=ADMIN, run="study").import_paths([tmp_path / "study.jsonl"])
    import_run(sessions, tmp_path, "new")
    with sessions() as session:
        study = run_scorecard(session, settings_for(tmp_path), "study", actor=ADMIN)
        new = run_scorecard(session, settings_for(tmp_path), "new", actor=ADMIN)
    assert study["suggester"]["trained_on_run"] and any("was trained on verdicts" in n for n in study["notes"])
    assert not new["suggester"]["trained_on_run"]


def test_two_runs_compared_on_their_shared_pairs(sessions, tmp_path):  # noqa: F811
    import_run(sessions, tmp_path, "a")
    import_run(sessions, tmp_path, "b", size=30)  # a has 10 pairs more
    suggest(sessions, "a", np.full(40, 0.7))
    suggest(sessions, "b", np.full(30, 0.4))
    with sessions() as session:
        for n in range(30):  # a accepted 24 of the 30 shared, b 12
            judge(session, f"a/a-{n}", "accept" if n % 5 else "reject")
            judge(session, f"b/b-{n}", "accept" if n % 5 in (1, 2) else "reject")
        judge(session, "a/a-35", "reject")  # not shared: not compared
        result = compare_runs(session, "a", "b", actor=ADMIN)
    assert result["pairs"] == 30 and result["human_pairs"] == 30 and result["method"] == "paired"
    assert result["estimate"] == pytest.approx(0.4, abs=1e-3)
    low, high = result["ci"]
    assert 0 < low < 0.4 < high
    assert result["sentence"].startswith("a is accepted 40 points more often than b (95% CI +")


def test_the_sentence_says_when_there_is_no_clear_difference():
    from loupe.estimates import Estimate

    assert "no clear difference" in difference_sentence("x", "y", Estimate(-0.03, (-0.1, 0.04), 40))
    assert "3 points less often than y" in difference_sentence("x", "y", Estimate(-0.03, (-0.1, 0.04), 40))
    assert "Too few verdicts" in difference_sentence("x", "y", None)


def test_annotators_may_not_see_the_scorecard_or_draw_samples(sessions, tmp_path):  # noqa: F811
    from review.access import Principal
    from review.errors import PermissionDeniedError

    import_run(sessions, tmp_path, "r")
    annotator = Principal("ann", "annotator")
    with sessions() as session, pytest.raises(PermissionDeniedError):
        run_scorecard(session, settings_for(tmp_path), "r", actor=annotator)
    with sessions() as session, pytest.raises(PermissionDeniedError):
        draw_sample(session, actor=annotator, run="r", budget=3, seed=1, name="x")


def test_the_sample_command_refuses_bad_input_and_stores_nothing(tmp_path, monkeypatch, capsys):
    from commands.cli import main
    from review.db import open_database

    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    sessions = open_database(settings_for(tmp_path))  # noqa: F811
    import_run(sessions, tmp_path, "r")
    out = tmp_path / "ids.txt"
    assert main(["sample", "--run", "r", "--budget", "41", "--seed", "1", "--name", "s", "--out", str(out)]) == 2
    assert "between 1 and the run's 40 records, got 41" in capsys.readouterr().err and not out.exists()
    assert main(["sample", "--run", "r", "--budget", "5", "--seed", "1", "--name", "s",
                 "--out", str(tmp_path / "missing" / "ids.txt")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    assert main(["sample", "--run", "r", "--budget", "5", "--seed", "1", "--name", "s", "--out", str(out)]) == 0
    assert len(out.read_text().split()) == 5  # the name was still free: the failures stored nothing
    assert main(["scorecard", "--run", "r", "--sample", "unknown"]) == 2
    assert "no sample named 'unknown'" in capsys.readouterr().err
