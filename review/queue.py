"""The review queue: which records to work through, in which order, as SQL over the records table.

A record's status is the verdict of one annotator (the one looking at the queue, by default): "next
unreviewed" means unreviewed by me. Reviewers may also look through everyone's verdicts (`EVERYONE`): a record
then counts as reviewed when anyone has judged it, and its status is its most recent verdict (the annotation
saved last; on a tie, the one created last). Filters and sorts run in the database on indexed columns, and a queue is
read as a list of ids (plus each one's status), so paging through 100k records does not reload records.

Text search looks in the question, the answer and the text of each stored passage (not in the passages' JSON
keys or metadata: searching "text" does not match every record), case-insensitively, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Boolean, Select, Text, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from review.access import Principal, current_actor, readable_records, require_viewing_as
from review.models import Annotation, Record, Run, SampleUnit

# The annotator value meaning "everyone's verdicts". Stored annotator names are stripped of surrounding spaces,
# so this value, with its leading space, names nobody.
EVERYONE = " everyone"
STATUSES = {"unreviewed": None, "accepted": "accept", "corrected": "correct", "rejected": "reject"}
SUPPORT_FILTERS = {
    "any": "any support",
    "unsupported": "has unsupported sentences",
    "abstains": "abstains",
    "supported": "fully supported",
    "unanalysed": "not analysed yet",
    "suggest_reject": "suggested: reject",
    "suggest_accept": "suggested: accept",
}
SORTS = {
    "riskiest": "riskiest first (most likely rejected, then most unsupported sentences)",
    "newest": "newest first",
    "oldest": "oldest first",
    "question": "by question, then document",
    "document": "by document, then question",
}
# The order of a stored sample (review.sampling): only its chosen records, in the order they were drawn.
SAMPLE_SORT = "sample:"


def sample_sort(name: str) -> str:
    """The sort value that works through sample `name`."""
    return SAMPLE_SORT + name


def sort_label(sort: str) -> str:
    return f"sample {sort.removeprefix(SAMPLE_SORT)}" if sort.startswith(SAMPLE_SORT) else SORTS[sort]


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows. Empty tuples mean "all"."""

    annotator: str
    runs: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    generators: tuple[str, ...] = ()
    support: str = "any"
    search: str = ""
    sort: str = "newest"


def natural_key(value: object) -> tuple:
    """A sort key ordering the numbers inside texts by value, case-insensitively: Q1, Q2, … Q10 (not Q1, Q10,
    Q2), annotator2 before annotator10; None after everything."""
    if value is None:
        return (1,)
    parts = [part for part in re.split(r"(\d+)", str(value)) if part]
    return (0, *((0, int(part), part) if part.isdigit() else (1, part.casefold(), part) for part in parts))


def annotator_label(annotator: str) -> str:
    """How an annotator choice reads in a selector ("everyone" for EVERYONE)."""
    return "everyone" if annotator == EVERYONE else annotator


def judged_by(annotator: str):
    """(verdicts, join condition): the annotations that decide each record's status, to outer-join to records
    (columns id, record_id, verdict): `annotator`'s, or with EVERYONE each record's most recent annotation."""
    table = Annotation.__table__
    if annotator != EVERYONE:
        mine = table.alias("mine")
        return mine, and_(mine.c.record_id == Record.id, mine.c.annotator == annotator)
    newest_first = func.row_number().over(partition_by=table.c.record_id,
                                          order_by=(table.c.updated_at.desc(), table.c.id.desc()))
    ranked = select(table.c.id, table.c.record_id, table.c.verdict, newest_first.label("rank")).subquery("ranked")
    latest = select(ranked.c.id, ranked.c.record_id, ranked.c.verdict).where(ranked.c.rank == 1).subquery("mine")
    return latest, latest.c.record_id == Record.id


def status_column(annotation):
    verdict_to_status = {verdict: status for status, verdict in STATUSES.items() if verdict}
    return case(*((annotation.c.verdict == v, literal(s)) for v, s in verdict_to_status.items()), else_=literal("unreviewed"))


def queue_query(flt: QueueFilter, actor: Principal) -> Select:
    """SELECT record id, status for the filter, in the filter's order: an annotator's queue holds the records
    assigned to them (and those they asked), reviewers' and admins' every record. The status is by
    `flt.annotator`'s verdicts, or everyone's (EVERYONE: the latest verdict of anyone)."""
    require_viewing_as(actor, flt.annotator)
    mine, joined = judged_by(flt.annotator)
    query = (
        select(Record.id, status_column(mine).label("status"))
        .outerjoin(mine, joined)
        .where(*readable_records(actor))
    )
    if flt.runs:
        query = query.where(Record.run.in_(flt.runs))
    if flt.questions:
        query = query.where(Record.question.in_(flt.questions))
    if flt.doc_ids:
        query = query.where(Record.doc_id.in_(flt.doc_ids))
    if flt.generators:
        query = query.where(Record.generator_model.in_(flt.generators))
    if flt.statuses:
        wanted = [STATUSES[s] for s in flt.statuses if s in STATUSES and STATUSES[s]]
        conditions = [mine.c.verdict.in_(wanted)] if wanted else []
        if "unreviewed" in flt.statuses:
            conditions.append(mine.c.id.is_(None))
        query = query.where(or_(*conditions))
    query = query.where(*_support_conditions(flt.support))
    if flt.sort.startswith(SAMPLE_SORT):
        query = query.join(SampleUnit, and_(SampleUnit.record_id == Record.id, SampleUnit.selected.is_(True),
                                            SampleUnit.sample == flt.sort.removeprefix(SAMPLE_SORT)))
    if flt.search.strip():
        pattern = "%" + flt.search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(
            Record.question.ilike(pattern, escape="\\"), Record.answer.ilike(pattern, escape="\\"),
            PassageTextMatches(Record.passages, pattern),
        ))
    return query.order_by(*_order(flt.sort))


class PassageTextMatches(ColumnElement[bool]):
    """Whether the `text` of any passage in a JSON list of passages matches a LIKE pattern (escape `\\`),
    case-insensitively; rendered per database (json_each on SQLite, json_array_elements on PostgreSQL)."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [("passages", InternalTraversal.dp_clauseelement),
                           ("pattern", InternalTraversal.dp_clauseelement)]

    def __init__(self, passages, pattern: str):
        self.passages = passages
        self.pattern = literal(pattern, Text)


@compiles(PassageTextMatches)
def _passage_text_default(element: PassageTextMatches, compiler, **kw) -> str:
    return compiler.process(cast(element.passages, Text).ilike(element.pattern, escape="\\"), **kw)


@compiles(PassageTextMatches, "sqlite")
def _passage_text_sqlite(element: PassageTextMatches, compiler, **kw) -> str:
    passages = compiler.process(element.passages, **kw)
    pattern = compiler.process(element.pattern, **kw)
    # a path into the whole list, so that an element that is not an object gives NULL rather than an error
    text = f"json_extract({passages}, '$[' || passage.key || '].text')"
    return (f"EXISTS (SELECT 1 FROM json_each({passages}) AS passage "
            f"WHERE lower({text}) LIKE lower({pattern}) ESCAPE '\\')")


@compiles(PassageTextMatches, "postgresql")
def _passage_text_postgresql(element: PassageTextMatches, compiler, **kw) -> str:
    passages = compiler.process(element.passages, **kw)
    pattern = compiler.process(element.pattern, **kw)
    items = f"CASE WHEN json_typeof({passages}) = 'array' THEN {passages} ELSE '[]'::json END"
    return (f"EXISTS (SELECT 1 FROM json_array_elements({items}) AS passage "
            f"WHERE passage ->> 'text' ILIKE {pattern} ESCAPE '\\')")


def _support_conditions(support: str) -> list:
    if support == "unsupported":
        return [Record.unsupported_count > 0]
    if support == "abstains":
        return [Record.abstains.is_(True)]
    if support == "supported":
        return [Record.unsupported_count == 0]
    if support == "unanalysed":
        return [Record.support.is_(None)]
    if support in ("suggest_reject", "suggest_accept"):
        return [Record.suggestion["verdict"].as_string() == support.removeprefix("suggest_")]
    return []


def _order(sort: str) -> list:
    if sort.startswith(SAMPLE_SORT):
        return [SampleUnit.position, Record.id]
    question_order = [func.length(Record.question_id), Record.question_id, Record.question]
    orders = {
        "riskiest": [Record.p_reject.desc().nulls_last(), Record.unsupported_count.desc().nulls_last(),
                     Record.abstains.desc().nulls_last(), Record.created_at.desc()],
        "newest": [Record.created_at.desc()],
        "oldest": [Record.created_at.asc()],
        "question": [*question_order, Record.doc_id],
        "document": [Record.doc_id, *question_order],
    }
    if sort not in orders:
        raise ValueError(f"sort must be one of {', '.join(orders)}, got {sort!r}")
    return [*orders[sort], Record.id]


def queue_entries(session: Session, flt: QueueFilter, *, actor: Principal) -> list[tuple[str, str]]:
    """(record id, status) of every record in the queue, in order, for `actor` as their account is now."""
    return [(row.id, row.status) for row in session.execute(queue_query(flt, current_actor(session, actor)))]


def next_unreviewed(entries: list[tuple[str, str]], after: int) -> int | None:
    """The position of the first unreviewed record after position `after`, wrapping around; None when done."""
    count = len(entries)
    for step in range(1, count + 1):
        position = (after + step) % count
        if entries[position][1] == "unreviewed":
            return position
    return None


@dataclass(frozen=True)
class QueueFacets:
    """The values the queue's filters offer. `questions` are question texts in the natural order of their ids
    (Q1, Q2, … Q10), those without an id after them; `annotators` are whose verdicts a status may be judged by
    (see `annotator_choices`), the default first."""

    runs: list[str]
    questions: list[str]
    doc_ids: list[str]
    generators: list[str]
    unanalysed: int
    annotators: list[str]


def annotator_choices(session: Session, runs: tuple[str, ...] | list[str] = (), *, actor: Principal) -> list[str]:
    """Whose verdicts statuses and counts can be judged by: for reviewers and admins EVERYONE first (the
    default), then themselves and everyone with a verdict in the runs (all runs when none are given), in natural
    order; for an annotator only themselves (blind review)."""
    if not actor.sees_everyone:
        return [actor.name]
    query = select(Annotation.annotator).distinct()
    if runs:
        query = query.join(Record, Record.id == Annotation.record_id).where(Record.run.in_(tuple(runs)))
    names = set(session.scalars(query)) | {actor.name}
    return [EVERYONE, *sorted(names, key=natural_key)]


def queue_facets(session: Session, runs: tuple[str, ...] = (), *, actor: Principal) -> QueueFacets:
    """Distinct filter values (within the chosen runs, so that the lists stay short) of the records `actor` may
    open."""
    readable = readable_records(actor)

    def distinct(column) -> list[str]:
        query = select(column).where(column.is_not(None), *readable).distinct().order_by(column)
        if runs:
            query = query.where(Record.run.in_(runs))
        return [value for value in session.scalars(query) if value != ""]

    unanalysed = select(func.count()).select_from(Record).where(Record.support.is_(None), *readable)
    if runs:
        unanalysed = unanalysed.where(Record.run.in_(runs))
    questions = select(Record.question, func.min(Record.question_id)).where(
        Record.question.is_not(None), Record.question != "", *readable).group_by(Record.question)
    if runs:
        questions = questions.where(Record.run.in_(runs))
    ordered = sorted(session.execute(questions).all(), key=lambda row: (natural_key(row[1]), natural_key(row[0])))
    return QueueFacets(
        runs=sorted((set(session.scalars(select(Run.name))) if actor.sees_everyone else set()) | set(distinct(Record.run)),
                    key=natural_key),
        questions=[question for question, _ in ordered], doc_ids=sorted(distinct(Record.doc_id), key=natural_key),
        generators=distinct(Record.generator_model), unanalysed=session.scalar(unanalysed),
        annotators=annotator_choices(session, runs, actor=actor),
    )
