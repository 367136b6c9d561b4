"""Assigning a run's records to annotators (balance, overlap, re-balancing, errors), the progress figures of
run_report, `cli.py assign`, and the Progress page in AppTest."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from configuration.settings import Settings
from review.access import Principal
from review.agreement import progress_report, run_report
from review.annotations import record_verdict
from review.assignment import assign_run, assigned_counts
from review.db import open_database
from review.errors import NotFoundError, PermissionDeniedError, ReviewError
from review.models import Assignment, Record
from review.users import add_user, set_disabled
from tests.conftest import ADMIN, run_app
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

PEOPLE = ("ann", "bob", "cy", "dan", "eve")


def add_people(session, *names: str, role: str = "annotator") -> None:
    for name in names:
        add_user(session, actor=ADMIN, name=name, role=role, password=f"{name}-password")


def add_run(session, run: str, count: int) -> list[str]:
    """`count` records in `run`; their ids, sorted."""
    ids = [f"{run}/r{i:02d}" for i in range(count)]
    session.add_all(Record(id=record_id, external_id=record_id, run=run, question=f"Question {i % 2}?",
                           answer="An answer.", generator_kind="extractive", generator_model="extractive")
                    for i, record_id in enumerate(ids))
    session.commit()
    return ids


def holders(session, run: str) -> dict[str, set[str]]:
    """Record id -> the annotators it is assigned to."""
    result: dict[str, set[str]] = {}
    for row in session.scalars(select(Assignment).where(Assignment.run == run)):
        result.setdefault(row.record_id, set()).add(row.annotator)
    return result


def judge(session, record_id: str, annotator: str, verdict: str = "accept", seconds: float | None = None) -> None:
    extra = {"reject": {"reason": "other"}, "correct": {"corrected_answer": "A better answer."}}.get(verdict, {})
    record_verdict(session, actor=ADMIN, record_id=record_id, annotator=annotator, verdict=verdict, seconds=seconds,
                   **extra)


@pytest.fixture
def people(sessions):  # noqa: F811
    with sessions() as session:
        add_people(session, *PEOPLE)
    return sessions


def test_every_record_gets_exactly_k_annotators_with_balanced_loads(people):
    cases = [(7, 3, 1), (7, 3, 2), (10, 4, 3), (5, 5, 5), (1, 3, 2), (9, 2, 1), (11, 5, 2)]
    with people() as session:
        for count, size, overlap in cases:
            run, names = f"run-{count}-{size}-{overlap}", list(PEOPLE[:size])
            ids = add_run(session, run, count)
            summary = assign_run(session, actor=ADMIN, run=run, annotators=names, overlap=overlap)
            assigned = holders(session, run)
            assert sorted(assigned) == ids
            assert all(len(who) == overlap and who <= set(names) for who in assigned.values()), (run, assigned)
            loads = assigned_counts(session, run)
            assert sum(loads.values()) == count * overlap
            assert max(loads.values()) - min(loads.values()) <= 1 and set(loads) == set(names[:count * overlap]), loads
            assert summary.loads == {name: loads.get(name, 0) for name in names}
            assert (summary.added, summary.removed, summary.kept) == (count * overlap, 0, 0)
            again = assign_run(session, actor=ADMIN, run=run, annotators=list(reversed(names)), overlap=overlap)
            assert (again.added, again.removed, again.kept) == (0, 0, count * overlap), "nothing moves the 2nd time"
            assert holders(session, run) == assigned
    with people() as session:  # committed
        assert assigned_counts(session, "run-10-4-3") == {"ann": 8, "bob": 8, "cy": 7, "dan": 7}


def test_newcomers_take_unjudged_records_from_the_most_loaded(people):
    with people() as session:
        ids = add_run(session, "study", 12)
        assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob", "cy"], overlap=1)
        before = holders(session, "study")
        mine = {name: sorted(r for r, who in before.items() if name in who) for name in ("ann", "bob", "cy")}
        assert [len(records) for records in mine.values()] == [4, 4, 4]
        judged = [(r, "ann") for r in mine["ann"]] + [(r, "bob") for r in mine["bob"][:2]]
        for record_id, name in judged:
            judge(session, record_id, name)

        summary = assign_run(session, actor=ADMIN, run="study", annotators=PEOPLE, overlap=1)
        after = holders(session, "study")
        assert sorted(after) == ids and all(len(who) == 1 for who in after.values())
        assert all(name in after[record_id] for record_id, name in judged), "judged work never moves"
        # ann's 4 judged records are forced on her; the other 8 spread evenly over the other four
        assert summary.loads == {"ann": 4, "bob": 2, "cy": 2, "dan": 2, "eve": 2}
        assert (summary.added, summary.removed, summary.kept) == (4, 4, 8), "only the newcomers' 4 records move"

        ids = add_run(session, "pairs", 10)
        assign_run(session, actor=ADMIN, run="pairs", annotators=["ann", "bob"], overlap=2)
        summary = assign_run(session, actor=ADMIN, run="pairs", annotators=["ann", "bob", "cy"], overlap=2)
        assert summary.loads == {"ann": 7, "bob": 7, "cy": 6}, "the newcomer takes the smaller share: fewer moves"
        assert (summary.added, summary.removed, summary.kept) == (6, 6, 14)
        assert all(len(who) == 2 for who in holders(session, "pairs").values())


def test_a_newcomer_costs_the_fewest_moves_the_judged_work_allows(people):
    with people() as session:
        r0, r1, r2, r3, r4 = add_run(session, "study", 5)
        assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob", "cy"], overlap=2)
        assert holders(session, "study") == {r0: {"ann", "bob"}, r1: {"ann", "cy"}, r2: {"bob", "cy"},
                                             r3: {"ann", "bob"}, r4: {"ann", "cy"}}
        for record_id, name in ((r0, "ann"), (r0, "bob"), (r1, "ann"), (r2, "bob"), (r4, "ann"), (r4, "cy")):
            judge(session, record_id, name)
        # 10 places over 4 people: 3, 3, 2, 2. Only ann's r3 and cy's r1 and r2 are free to move; dan's two
        # records are ann's r3 (ann 4 -> 3) and one of cy's (cy 3 -> 2): two moves, where a greedy pass makes three.
        summary = assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob", "cy", "dan"], overlap=2)
        assert summary.loads == {"ann": 3, "bob": 3, "cy": 2, "dan": 2}
        assert (summary.added, summary.removed, summary.kept) == (2, 2, 8)
        after = holders(session, "study")
        assert after[r3] == {"bob", "dan"} and "dan" in after[r1] | after[r2]


def test_a_dropped_annotator_keeps_only_judged_records(people):
    with people() as session:
        add_run(session, "study", 6)
        assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob", "cy"], overlap=2)
        kept = sorted(r for r, who in holders(session, "study").items() if "cy" in who)[0]
        judge(session, kept, "cy", "reject")
        summary = assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob"], overlap=2)
        after = holders(session, "study")
        assert [r for r, who in after.items() if "cy" in who] == [kept]
        assert all(len(who) == 2 for who in after.values()), "cy's judged record still counts toward its 2"
        assert after[kept] - {"cy"} < {"ann", "bob"}
        assert summary.loads == {"ann": 6, "bob": 5, "cy": 1} or summary.loads == {"ann": 5, "bob": 6, "cy": 1}
        assert summary.removed == 3 and summary.added == 3  # cy's 3 unjudged records, to ann or bob


def test_bad_requests_change_nothing(people):
    with people() as session:
        add_run(session, "study", 4)
        set_disabled(session, actor=ADMIN, name="eve", disabled=True)
        with pytest.raises(ReviewError, match=r"overlap must be between 1 and the number of annotators \(2\), got 3"):
            assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob"], overlap=3)
        with pytest.raises(ReviewError, match="got 0"):
            assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob"], overlap=0)
        with pytest.raises(ReviewError, match="unknown user\\(s\\): nobody, zed; disabled user\\(s\\): eve"):
            assign_run(session, actor=ADMIN, run="study", annotators=["ann", "zed", "eve", "nobody"], overlap=1)
        with pytest.raises(ReviewError, match="at least one annotator"):
            assign_run(session, actor=ADMIN, run="study", annotators=[], overlap=1)
        with pytest.raises(NotFoundError, match="run 'nope' has no records"):
            assign_run(session, actor=ADMIN, run="nope", annotators=["ann"], overlap=1)
        for role in ("annotator", "reviewer"):
            with pytest.raises(PermissionDeniedError, match="may not assign records"):
                assign_run(session, actor=Principal("bob", role), run="study", annotators=["ann"], overlap=1)
        assert assigned_counts(session, "study") == {}


def test_report_counts_assigned_done_and_verdict_mix(people):
    with people() as session:
        ids = add_run(session, "study", 6)
        other = add_run(session, "other", 1)
        assert run_report(session, "study")["annotators"] == {}
        judge(session, ids[0], "dan")  # before any assignment: "assigned" is the whole run
        assert run_report(session, "study")["annotators"]["dan"]["assigned"] == 6

        assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob", "cy"], overlap=2)
        mine = sorted(r for r, who in holders(session, "study").items() if "ann" in who)
        for record_id, verdict, seconds in zip(mine, ("accept", "reject", "accept"), (10.0, 30.0, 20.0)):
            judge(session, record_id, "ann", verdict, seconds)
        judge(session, other[0], "ann", "correct")  # another run's record: not done in this one
        bobs = sorted(r for r, who in holders(session, "study").items() if "bob" in who)
        judge(session, bobs[0], "bob", "correct", 5.0)
        report = run_report(session, "study")
    mix = lambda accept=0, correct=0, reject=0: {"accept": accept, "correct": correct, "reject": reject}  # noqa: E731
    assert report["annotators"] == {
        "ann": {"done": 3, "assigned": 4, "median_seconds": 20.0, "verdicts": mix(accept=2, reject=1)},
        "bob": {"done": 1, "assigned": 4, "median_seconds": 5.0, "verdicts": mix(correct=1)},
        "cy": {"done": 0, "assigned": 4, "median_seconds": None, "verdicts": mix()},
        "dan": {"done": 1, "assigned": 0, "median_seconds": None, "verdicts": mix(accept=1)},
    }
    with people() as session:
        own = progress_report(session, actor=Principal("cy", "annotator"), run="study")
        assert own == {"run": "study", "annotators": {"cy": report["annotators"]["cy"]}, "agreement": None}
        own = progress_report(session, actor=Principal("ann", "annotator"), run="study")
        assert list(own["annotators"]) == ["ann"] and own["agreement"] is None
        assert progress_report(session, actor=Principal("rex", "reviewer"), run="study") == report


def test_cli_assign(tmp_path, monkeypatch, capsys):
    import cli

    data_dir = tmp_path / "data"
    monkeypatch.setenv("LOUPE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LOUPE_ANNOTATOR", "boss")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with open_database(Settings(data_dir=data_dir))() as session:
        add_people(session, "ann", "bob")
        add_run(session, "study", 5)
    assert cli.main(["assign", "--run", "study", "--annotators", "ann", "bob", "--overlap", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "run study: 5 assignments added, 0 removed, 0 kept", "  ann: 3 records", "  bob: 2 records"]
    with open_database(Settings(data_dir=data_dir))() as session:
        assert {row.assigned_by for row in session.scalars(select(Assignment))} == {"boss"}
    assert cli.main(["report", "--run", "study", "--json"]) == 0
    assert '"assigned": 3' in capsys.readouterr().out

    assert cli.main(["assign", "--run", "study", "--annotators", "ann", "bob", "--overlap", "3"]) == 2
    assert "error: the overlap must be between 1 and the number of annotators (2), got 3" in capsys.readouterr().err
    assert cli.main(["assign", "--run", "study", "--annotators", "ann", "zed", "--overlap", "1"]) == 2
    assert "unknown user(s): zed" in capsys.readouterr().err
    assert cli.main(["assign", "--run", "nope", "--annotators", "ann", "--overlap", "1"]) == 2
    assert "run 'nope' has no records" in capsys.readouterr().err


@pytest.fixture
def judged_run(tmp_path):
    """A data directory with run "study" (4 records) assigned to ann and bob, each record to both; ann judged
    three, bob one (no record judged by both)."""
    data_dir = tmp_path / "data"
    with open_database(Settings(data_dir=data_dir))() as session:
        add_people(session, "boss", role="admin")
        add_people(session, "ann", "bob", "cy")
        ids = add_run(session, "study", 4)
        assign_run(session, actor=ADMIN, run="study", annotators=["ann", "bob"], overlap=2)
        for record_id, verdict, seconds in zip(ids[:3], ("accept", "accept", "reject"), (10.0, 20.0, 60.0)):
            judge(session, record_id, "ann", verdict, seconds)
        judge(session, ids[3], "bob", "accept", 8.0)
    return data_dir


def progress_table(at) -> list[dict]:
    """The per-annotator table as records, missing values as None."""
    table = at.dataframe[0].value
    return table.astype(object).where(table.notna(), None).to_dict("records")


@pytest.mark.slow
def test_progress_page_figures_and_assigning(judged_run, monkeypatch):
    at = run_app(monkeypatch, judged_run, LOUPE_GENERATOR_KIND="extractive", LOUPE_AUTH="off", LOUPE_ANNOTATOR="boss")
    at.switch_page("app_pages/progress.py").run()
    assert not at.exception, at.exception
    assert [title.value for title in at.title] == ["Progress"]
    assert progress_table(at) == [
        {"annotator": "ann", "done": 3, "assigned": 4, "percent": 0.75, "median seconds": 20.0,
         "accept": 2, "correct": 0, "reject": 1},
        {"annotator": "bob", "done": 1, "assigned": 4, "percent": 0.25, "median seconds": 8.0,
         "accept": 1, "correct": 0, "reject": 0}]
    pairs = at.dataframe[1].value
    assert pairs[["a", "b", "n"]].to_dict("records") == [{"a": "ann", "b": "bob", "n": 0}]
    assert pairs[["agreement", "Cohen's kappa"]].isna().all(axis=None), "no record judged by both"
    assert [(metric.label, metric.value) for metric in at.metric] == [("Fleiss' kappa", "–"),
                                                                       ("Krippendorff's alpha", "–")]

    assert at.multiselect(key="progress_annotators_study").value == ["ann", "bob"]
    at.multiselect(key="progress_annotators_study").select("cy")
    at.number_input(key="progress_overlap").set_value(4)
    at.button(key="progress_assign").click().run()
    assert not at.exception, at.exception
    assert "between 1 and the number of annotators (3), got 4" in at.error[0].value.replace("\\", "")

    at.number_input(key="progress_overlap").set_value(2)
    at.button(key="progress_assign").click().run()
    assert not at.exception, at.exception
    notice = at.success[0].value.replace("\\", "")
    assert notice == "run study: 2 assignments added, 2 removed, 6 kept. Records per annotator: ann 3, bob 3, cy 2."
    assert {row["annotator"]: (row["assigned"], row["percent"]) for row in progress_table(at)} == {
        "ann": (3, 1.0), "bob": (3, 1 / 3), "cy": (2, 0.0)}


@pytest.mark.slow
def test_progress_page_shows_an_annotator_only_their_own_row(judged_run, monkeypatch):
    at = run_app(monkeypatch, judged_run, LOUPE_GENERATOR_KIND="extractive", LOUPE_AUTH="password")
    at.text_input(key="login_name").input("ann")
    at.text_input(key="login_password").input("ann-password")
    next(button for button in at.button if button.label == "Log in").click().run()
    at.switch_page("app_pages/progress.py").run()
    assert not at.exception, at.exception
    assert [title.value for title in at.title] == ["Progress"]
    assert progress_table(at) == [{"annotator": "ann", "done": 3, "assigned": 4, "percent": 0.75,
                                   "median seconds": 20.0, "accept": 2, "correct": 0, "reject": 1}]
    assert len(at.dataframe) == 1 and not at.metric, "no agreement figures: they would tell how bob judged"
    assert [header.value for header in at.subheader] == ["Per annotator"], "no Agreement, no Assign records"
