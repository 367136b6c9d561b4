"""Who judges which record of a run: each record goes to `overlap` annotators, with balanced loads.

Work already done is never taken away: an annotator who has judged a record keeps (or gets) that assignment,
and it counts toward the record's overlap and the annotator's load even where that makes loads uneven. All
else moves as little as possible, so that assigning again after people join or leave only shifts what it must.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from review.access import Principal, require_role
from review.errors import ConflictError, NotFoundError, ReviewError
from review.models import Annotation, Assignment, Record, User

Pair = tuple[str, str]  # (record id, annotator)


@dataclass(frozen=True)
class AssignmentSummary:
    """What an assignment changed, and how many records each annotator of the run now holds."""

    run: str
    added: int
    removed: int
    kept: int
    loads: dict[str, int]

    def summary(self) -> str:
        return f"run {self.run}: {self.added} assignments added, {self.removed} removed, {self.kept} kept"


def assigned_counts(session: Session, run: str) -> dict[str, int]:
    """The number of records of `run` assigned to each annotator, by name; empty before the run is assigned."""
    query = (select(Assignment.annotator, func.count()).where(Assignment.run == run)
             .group_by(Assignment.annotator).order_by(Assignment.annotator))
    return {name: int(count) for name, count in session.execute(query)}


def assign_run(session: Session, *, actor: Principal, run: str, annotators: Iterable[str],
               overlap: int) -> AssignmentSummary:
    """Assign every record of `run` to `overlap` of `annotators` and commit; annotators left out of the list
    lose the records they have not judged yet.

    :raises PermissionDeniedError: `actor` is not an admin.
    :raises NotFoundError: the run has no records.
    :raises ReviewError: an annotator is unknown or disabled, or `overlap` is not between 1 and their number.
    :raises ConflictError: someone changed the run's assignments at the same moment.
    """
    require_role(actor, "admin", "assign records")
    names = sorted(set(annotators))
    _check_annotators(session, names)
    if not 1 <= overlap <= len(names):
        raise ReviewError(f"the overlap must be between 1 and the number of annotators ({len(names)}), got {overlap}")
    records = list(session.scalars(select(Record.id).where(Record.run == run).order_by(Record.id))) if run else []
    if not records:
        raise NotFoundError(f"run {run!r} has no records")
    rows = {(row.record_id, row.annotator): row
            for row in session.scalars(select(Assignment).where(Assignment.run == run))}
    existing = set(rows)
    judged = {(record_id, name) for record_id, name in session.execute(
        select(Annotation.record_id, Annotation.annotator).join(Record, Record.id == Annotation.record_id)
        .where(Record.run == run))}
    plan = plan_assignments(records, names, overlap, existing=existing, judged=judged)
    for pair in existing - plan:
        session.delete(rows[pair])
    for record_id, name in sorted(plan - existing):
        session.add(Assignment(run=run, record_id=record_id, annotator=name, assigned_by=actor.name))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"the assignments of run {run!r} changed at the same moment; assign again") from None
    loads = dict.fromkeys(names, 0) | Counter(name for _, name in plan)
    return AssignmentSummary(run=run, added=len(plan - existing), removed=len(existing - plan),
                             kept=len(plan & existing), loads=dict(sorted(loads.items())))


def _check_annotators(session: Session, names: list[str]) -> None:
    if not names:
        raise ReviewError("name at least one annotator")
    users = {user.name: user for user in session.scalars(select(User).where(User.name.in_(names)))}
    unknown = [name for name in names if name not in users]
    disabled = [name for name in names if name in users and users[name].disabled]
    problems = ([f"unknown user(s): {', '.join(unknown)}"] if unknown else []) + (
        [f"disabled user(s): {', '.join(disabled)}"] if disabled else [])
    if problems:
        raise ReviewError("cannot assign records to " + "; ".join(problems))


def plan_assignments(records: list[str], names: list[str], overlap: int, *, existing: set[Pair],
                     judged: set[Pair]) -> set[Pair]:
    """The assignments of a run after (re-)assigning it to `names`, given the `existing` ones and who `judged` what.

    Pinned pairs (an assigned or listed annotator who judged the record) stay as they are. Each record's other
    places go to listed annotators, first to those who held it already, then to the least loaded; then records
    move until the loads are as even as the judged work allows, and moves are traded until the plan keeps as many
    existing assignments as those loads allow.
    """
    in_run = set(records)
    pinned = {(r, a) for r, a in judged if r in in_run and ((r, a) in existing or a in names)}
    plan = _Plan(names, records, pinned, existing)
    for record in records:
        holders = [a for a in names if (record, a) in existing and a not in plan.on[record]]
        for name in holders[:max(0, overlap - len(plan.on[record]))]:
            plan.give(record, name)
    for record in records:
        while len(plan.on[record]) < overlap:
            plan.give(record, min((a for a in names if a not in plan.on[record]), key=lambda a: (plan.load[a], a)))
    plan.balance()
    plan.keep_most()
    return pinned | {(record, name) for name, held in plan.movable.items() for record in held}


Move = tuple[str, str, str]  # (record, giver, taker)


class _Plan:
    """Who holds each record, and the listed annotators' loads and movable (unjudged) records, while a plan is made.

    Moves along a chain or a cycle of distinct annotators, each chosen in the same state, can be made in any
    order: a giver still holds its record and a taker is still off it.
    """

    def __init__(self, names: list[str], records: list[str], pinned: set[Pair], existing: set[Pair]):
        self.names, self.existing = names, existing
        self.on: dict[str, set[str]] = {record: set() for record in records}
        self.load = {name: 0 for name in names}
        self.movable: dict[str, dict[str, None]] = {name: {} for name in names}  # insertion-ordered sets
        for record, name in pinned:
            self.on[record].add(name)
            if name in self.load:
                self.load[name] += 1

    def give(self, record: str, name: str) -> None:
        self.on[record].add(name)
        self.movable[name][record] = None
        self.load[name] += 1

    def _move(self, moves: list[Move]) -> None:
        for record, giver, taker in moves:
            self.on[record].discard(giver)
            del self.movable[giver][record]
            self.load[giver] -= 1
            self.give(record, taker)

    def _added(self, record: str, giver: str, taker: str) -> int:
        """How many more new assignments the plan has after this move: -1, 0 or 1."""
        return ((record, taker) not in self.existing) - ((record, giver) not in self.existing)

    def _fitting(self, giver: str, taker: str) -> str | None:
        """A record `giver` may hand to `taker`: one they hold and the taker does not."""
        return next((record for record in self.movable[giver] if taker not in self.on[record]), None)

    def _cheapest(self, giver: str, taker: str) -> tuple[int, str] | None:
        """The record `giver` may hand to `taker` that adds the fewest new assignments, and that number."""
        best = None
        for record in self.movable[giver]:
            if taker not in self.on[record] and (best is None or self._added(record, giver, taker) < best[0]):
                best = (self._added(record, giver, taker), record)
                if best[0] < 0:
                    break
        return best

    def _chain(self, source: str) -> list[Move]:
        """The moves along a shortest chain from `source` to the lightest of the nearest annotators holding at
        least two records fewer; empty when there is none."""
        links: dict[str, tuple[str, str] | None] = {source: None}
        frontier = [source]
        while frontier:
            lighter = [name for name in frontier if self.load[name] <= self.load[source] - 2]
            if lighter:
                name, moves = min(lighter, key=lambda a: (self.load[a], a)), []
                while links[name] is not None:
                    record, giver = links[name]
                    moves.append((record, giver, name))
                    name = giver
                return moves
            following = []
            for name in frontier:
                for other in self.names:
                    if other not in links and (record := self._fitting(name, other)) is not None:
                        links[other] = (record, name)
                        following.append(other)
            frontier = following
        return []

    def balance(self) -> None:
        """Move records until no chain joins two annotators whose loads differ by two or more: the loads are then
        the most even the judged work allows (each chain lowers the sum of squared loads, so this ends)."""
        while moves := next(filter(None, map(self._chain, sorted(self.names, key=lambda a: (-self.load[a], a)))), []):
            self._move(moves)

    def keep_most(self) -> None:
        """Trade moves that lower the number of new assignments and leave the loads as even, while there are any:
        then no plan as even keeps more existing assignments (negative-cycle cancelling in the flow problem)."""
        while moves := self._negative_cycle():
            self._move(moves)

    def _negative_cycle(self) -> list[Move]:
        """Bellman-Ford over the annotators (each one a start), with the cheapest move between each two and,
        free of cost, a step from each annotator to each one holding one record more: closing a chain of moves
        with such a step only swaps who holds the one record more."""
        links = {(a, b): link for a in self.names for b in self.names if a != b and (link := self._cheapest(a, b))}
        for a in self.names:
            for b in self.names:
                if self.load[b] == self.load[a] + 1 and links.get((a, b), (1,))[0] > 0:
                    links[a, b] = (0, None)
        cost = {name: 0 for name in self.names}
        parent: dict[str, tuple[str | None, str]] = {}
        for _ in range(len(self.names)):
            changed = None
            for (giver, taker), (added, record) in links.items():
                if cost[giver] + added < cost[taker]:
                    cost[taker], parent[taker], changed = cost[giver] + added, (record, giver), taker
            if changed is None:
                return []
        for _ in range(len(self.names)):  # step back onto the cycle
            changed = parent[changed][1]
        moves, name = [], changed
        while not moves or name != changed:
            record, giver = parent[name]
            moves.append((record, giver, name))
            name = giver
        return [move for move in moves if move[0] is not None]
