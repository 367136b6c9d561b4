"""A logged-in user's rights are re-read by the data functions on every call, not taken from the Principal the page
was drawn with: the Queue's review panel is a fragment, whose buttons rerun without re-reading the login. On SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from configuration.settings import Settings
from review.access import Principal
from review.annotations import record_verdict, undo_verdict
from review.errors import AuthenticationError, PermissionDeniedError
from review.models import Annotation, Assignment, WithdrawnVerdict
from review.queue import EVERYONE, QueueFilter, queue_entries
from review.records import open_record, record_from_answer
from review.users import add_user, authenticate, load_principal, set_disabled, set_password, set_role
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)
from tests.test_review_db import make_answer


@pytest.fixture
def team(sessions, tmp_path):  # noqa: F811
    """Accounts rita (reviewer) and ana (annotator); records r/0 (assigned to ana) and r/1 (to nobody)."""
    with sessions() as session:
        for name, role in (("rita", "reviewer"), ("ana", "annotator")):
            add_user(session, actor=ADMIN, name=name, role=role, password=f"{name}-password")
        for number in range(2):
            record_from_answer(session, answer=make_answer(question=f"Question {number}?"),
                               settings=Settings(data_dir=tmp_path), run="r", record_id=f"r/{number}")
        session.add(Assignment(run="r", record_id="r/0", annotator="ana", assigned_by="admin"))
        session.commit()
    return sessions


def logged_in(sessions, name: str) -> Principal:  # noqa: F811
    """The Principal a page run builds at login, kept by a fragment until the next full run."""
    with sessions() as session:
        return authenticate(session, name=name, password=f"{name}-password")


def admin_does(sessions, change) -> None:  # noqa: F811
    with sessions() as session:
        change(session)


def stored_verdicts(sessions) -> int:  # noqa: F811
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Annotation))


def test_a_demoted_reviewer_loses_the_reviewer_rights_at_the_next_call(team):
    rita = logged_in(team, "rita")
    with team() as session:  # as a reviewer, she may judge any record
        record_verdict(session, actor=rita, record_id="r/0", annotator="rita", verdict="accept")
    admin_does(team, lambda session: set_role(session, actor=ADMIN, name="rita", role="annotator"))

    with team() as session:
        with pytest.raises(PermissionDeniedError, match=r"rita \(an annotator\) may not judge this record: the record "
                                                        "is not assigned to them"):
            record_verdict(session, actor=rita, record_id="r/1", annotator="rita", verdict="accept")
        with pytest.raises(PermissionDeniedError, match="not assigned to them"):
            open_record(session, actor=rita, record_id="r/1")
        with pytest.raises(PermissionDeniedError, match="needs the reviewer role"):
            queue_entries(session, QueueFilter(annotator=EVERYONE), actor=rita)
        assert queue_entries(session, QueueFilter(annotator="rita"), actor=rita) == []  # nothing assigned to her
    assert stored_verdicts(team) == 1


def test_a_demoted_reviewer_no_longer_sees_verdicts_blind_review_hides(team):
    with team() as session:
        session.add(Assignment(run="r", record_id="r/0", annotator="rita", assigned_by="admin"))
        session.commit()
        record_verdict(session, actor=ADMIN, record_id="r/0", annotator="ana", verdict="reject", reason="wrong")
    rita = logged_in(team, "rita")
    admin_does(team, lambda session: set_role(session, actor=ADMIN, name="rita", role="annotator"))
    with team() as session:
        _record, visible = open_record(session, actor=rita, record_id="r/0")
    assert visible == [], "an annotator sees colleagues' verdicts only after saving her own"


def test_a_disabled_annotator_can_neither_save_nor_undo(team):
    ana = logged_in(team, "ana")
    with team() as session:
        record_verdict(session, actor=ana, record_id="r/0", annotator="ana", verdict="accept")
    admin_does(team, lambda session: set_disabled(session, actor=ADMIN, name="ana", disabled=True))

    with team() as session:
        for _ in range(2):  # pressed twice: refused twice
            with pytest.raises(PermissionDeniedError, match="the account 'ana' was disabled: nothing was done"):
                record_verdict(session, actor=ana, record_id="r/0", annotator="ana", verdict="reject", reason="wrong")
        with pytest.raises(PermissionDeniedError, match="was disabled"):
            undo_verdict(session, actor=ana, record_id="r/0", annotator="ana")
        with pytest.raises(PermissionDeniedError, match="was disabled"):
            open_record(session, actor=ana, record_id="r/0")
        stored = session.scalars(select(Annotation)).one()
        assert (stored.verdict, stored.version) == ("accept", 1)
        assert session.scalar(select(func.count()).select_from(WithdrawnVerdict)) == 0


def test_without_logins_nothing_is_re_read(team):
    """Single-user mode and the command line have no account: a Principal named like a disabled account keeps
    acting as built (the person at the keyboard holds the database)."""
    admin_does(team, lambda session: set_disabled(session, actor=ADMIN, name="ana", disabled=True))
    local = Principal("ana", "admin")
    with team() as session:
        record_verdict(session, actor=local, record_id="r/1", annotator="ana", verdict="accept")
    assert stored_verdicts(team) == 1


def test_a_password_set_ends_the_session_in_the_fragment_too(team):
    ana = logged_in(team, "ana")
    with team() as session:
        assert load_principal(session, "ana", ana.credentials_version) == ana
    admin_does(team, lambda session: set_password(session, actor=ADMIN, name="ana", password="a new password"))
    with team() as session:
        with pytest.raises(AuthenticationError, match="the password of 'ana' was changed"):
            load_principal(session, "ana", ana.credentials_version)
        with pytest.raises(PermissionDeniedError, match="the password of 'ana' was changed, or the account disabled, "
                                                        "since this session logged in: nothing was done"):
            record_verdict(session, actor=ana, record_id="r/0", annotator="ana", verdict="accept")
    assert stored_verdicts(team) == 0
    with team() as session:  # logging in again, with the new password, acts again
        anew = authenticate(session, name="ana", password="a new password")
        record_verdict(session, actor=anew, record_id="r/0", annotator="ana", verdict="accept")
    assert stored_verdicts(team) == 1
