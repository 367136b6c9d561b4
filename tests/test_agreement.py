"""Agreement figures against values worked out by hand for small tables, and `cli.py report --json`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from review.agreement import fleiss, krippendorff_alpha, pair_agreement

A, R, C = "accept", "reject", "correct"


def table(judgements: dict[str, list[str | None]]) -> pd.DataFrame:
    rows = [{"record": f"r{i}", "question": "q", "annotator": name, "verdict": verdict, "seconds": 1.0}
            for name, verdicts in judgements.items() for i, verdict in enumerate(verdicts) if verdict]
    return pd.DataFrame(rows, columns=["record", "question", "annotator", "verdict", "seconds"])


def test_cohen_kappa_by_hand():
    # po = 3/4; pe = .5 * .25 + .5 * .75 = .5; kappa = (.75 - .5) / (1 - .5) = .5
    [pair] = pair_agreement(table({"ann": [A, A, R, R], "bob": [A, R, R, R]}))
    assert pair == {"a": "ann", "b": "bob", "n": 4, "percent_agreement": 0.75, "cohen_kappa": 0.5}


def test_only_records_both_judged_count():
    [pair] = pair_agreement(table({"ann": [A, R, None, C], "bob": [A, None, R, C]}))
    assert pair["n"] == 2 and pair["percent_agreement"] == 1.0 and pair["cohen_kappa"] == 1.0


def test_degenerate_tables():
    [one_label] = pair_agreement(table({"ann": [A, A, A], "bob": [A, A, A]}))
    assert one_label["percent_agreement"] == 1.0 and one_label["cohen_kappa"] is None, "kappa is undefined"
    [no_overlap] = pair_agreement(table({"ann": [A, None], "bob": [None, R]}))
    assert no_overlap == {"a": "ann", "b": "bob", "n": 0, "percent_agreement": None, "cohen_kappa": None}
    assert fleiss(table({"ann": [A], "bob": [A]})) == {"value": None, "n": 0, "raters": 2}
    assert krippendorff_alpha(table({"ann": [A, A], "bob": [A, A]})) == {"value": None, "n": 2}


def test_fleiss_and_krippendorff_by_hand():
    # items: AAA, AAR, RRR, ARR. Fleiss: P_i = 1, 1/3, 1, 1/3 -> mean 2/3; p_accept = p_reject = .5 -> Pe = .5;
    # kappa = (2/3 - .5) / .5 = 1/3. Krippendorff (nominal): coincidences o_AA = 4, o_RR = 4, o_AR = o_RA = 2,
    # n = 12; Do = 4/12, De = 2 * 6 * 6 / (12 * 11); alpha = 1 - Do / De = 7/18.
    judgements = table({"ann": [A, A, R, A], "bob": [A, A, R, R], "cy": [A, R, R, R]})
    assert fleiss(judgements) == {"value": pytest.approx(1 / 3, abs=1e-4), "n": 4, "raters": 3}
    assert krippendorff_alpha(judgements) == {"value": pytest.approx(7 / 18, abs=1e-4), "n": 4}


def test_report_json_from_imported_verdicts(tmp_path, monkeypatch, capsys):
    import cli

    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    records = tmp_path / "run.jsonl"
    records.write_text("".join(json.dumps({"id": f"r{i}", "question": "Which seed?" if i < 2 else "Which GPU?",
                                           "answer": "An answer.", "contexts": ["A passage."]}) + "\n"
                               for i in range(4)), encoding="utf-8")
    assert cli.main(["import", str(records), "--run", "study"]) == 0
    for name, verdicts in (("ann", "YYNN"), ("bob", "YNNN")):
        csv = tmp_path / f"{name}.csv"
        csv.write_text("Unique_ID,decision\n" + "".join(f"r{i},{'Yes' if v == 'Y' else 'No'}\n"
                                                        for i, v in enumerate(verdicts)), encoding="utf-8")
        assert cli.main(["import", str(csv), "--run", "study", "--annotator", name]) == 0
    capsys.readouterr()
    assert cli.main(["report", "--run", "study", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run"] == "study"
    assert report["annotators"]["ann"] == {"done": 4, "assigned": 4, "median_seconds": None,
                                           "verdicts": {"accept": 2, "correct": 0, "reject": 2}}
    assert report["agreement"]["pairs"] == [
        {"a": "ann", "b": "bob", "n": 4, "percent_agreement": 0.75, "cohen_kappa": 0.5}]
    seed = report["agreement"]["per_question"]["Which seed?"]["pairs"][0]
    assert seed["n"] == 2 and seed["percent_agreement"] == 0.5
    assert cli.main(["report", "--run", "no-such-run", "--json"]) == 2
