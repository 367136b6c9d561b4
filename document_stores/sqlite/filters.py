"""Haystack filters -> SQL: one job, translating a Haystack filter dict into a parameterised SQL expression.

Haystack filter dicts (==, !=, in, not in, >, >=, <, <=, AND/OR/NOT, nested; fields `meta.x`,
`id`, `content`; a bare name is a meta field, as in Haystack) are translated to parameterised SQL over
json_extract/json_type (values are always bound parameters; a meta path is written into the SQL only when
it is a plain identifier, so that the expression index can serve it, and bound otherwise). The store applies
filters inside the search: the matching rids are selected with SQL first, then only those rows are scored. The SQL
follows Haystack's semantics (a missing field is None; `!=`/`not in` match a missing field; strings never equal
numbers; ordering operators compare numbers, or ISO dates when the filter value is a string). Date-like strings,
lists and dicts are compared by a Python function registered on the connection (`register_functions`) that calls
Haystack's own comparison operators.

Refusals. InMemoryDocumentStore raises FilterError when an ordering comparison (>, >=, <, <=) meets a stored value
it cannot order against the filter value (a string that is not a date, a number against a date string, anything but
a date string against a datetime), but only when its per-document evaluation reaches that comparison (AND/OR
short-circuit), which SQL cannot reproduce. The rule here: a filter is refused (FilterError, Haystack's wording)
when Haystack would refuse one of its comparisons on some stored document; otherwise it selects exactly Haystack's
documents. `checked_filter_sql` enforces it: each ordering comparison carries a check (`OrderingCheck`), one query
for the first stored value of that field that Haystack cannot order against the filter value (numbers: an indexable
`>= ''`, i.e. any text, list or dict; dates: Haystack's own comparison on every non-null value), run on the
connection before the filter's own query. `==`, `!=`, `in` and `not in` never refuse and need no check. A stored
list or dict against a number, where Haystack crashes with TypeError, is refused too. A filter value that no value can
be ordered against (a list, a string that is not a date) is refused whatever the data, as a malformed filter.

The expressions read the columns of the store's `documents` table: id, content, meta (JSON), embedding, extra (JSON).
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NoReturn

from haystack.errors import FilterError
from haystack.utils.filters import COMPARISON_OPERATORS

SQL_CHUNK = 500  # bound parameters per IN (...) list
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMERIC_TYPES = "('integer','real','true','false')"


@dataclass(frozen=True)
class Operand:
    """What a filter field reads: a value expression and a type expression, each with its own parameters."""

    value_sql: str
    value_params: tuple[Any, ...]
    type_sql: str
    type_params: tuple[Any, ...]


_DOCUMENT_FIELDS = {"id", "content", "blob", "meta", "score", "embedding", "sparse_embedding"}


def field_operand(field: str) -> Operand:
    """What a filter field (id, content, meta.<path>, or a bare meta name) reads in SQL."""
    if field in ("id", "content"):
        return Operand(field, (), f"typeof({field})", ())
    if field.startswith("meta."):
        parts = field.split(".")[1:]
    elif "." in field:
        raise FilterError(f"unsupported filter field {field!r}: use id, content or meta.<name>")
    elif field in _DOCUMENT_FIELDS:
        if field in ("embedding", "blob", "sparse_embedding"):
            column = "embedding" if field == "embedding" else f"json_extract(extra, '$.{field}')"
            return Operand(column, (), f"CASE WHEN {column} IS NULL THEN NULL ELSE 'blob' END", ())
        raise FilterError(f"unsupported filter field {field!r}: use id, content or meta.<name>")
    else:
        parts = [field]  # a legacy filter field: Haystack reads it from meta
    if any(not part for part in parts):
        raise FilterError(f"invalid filter field {field!r}")
    if all(IDENTIFIER.match(part) for part in parts):
        # A plain identifier path is part of the SQL text so that an expression index on it can be used.
        path = "$." + ".".join(parts)
        return Operand(f"json_extract(meta, '{path}')", (), f"json_type(meta, '{path}')", ())
    if any('"' in part for part in parts):
        raise FilterError(f"a meta field name may not contain a double quote: {field!r}")
    path = "$" + "".join(f'."{part}"' for part in parts)
    return Operand("json_extract(meta, ?)", (path,), "json_type(meta, ?)", (path,))


def _looks_like_date(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) >= 10
        and value[:4].isdigit()
        and value[4] == "-"
        and value[5:7].isdigit()
        and value[7] == "-"
        and value[8:10].isdigit()
    )


def _json_filter_value(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, (datetime, date)) else str(v))


def _stored_value(value: Any, value_type: str | None) -> Any:
    """The Python value Haystack sees for what json_extract/json_type (or a column and its typeof) return."""
    if value_type in ("array", "object") and isinstance(value, str):
        return json.loads(value)
    if value_type == "true":
        return True
    if value_type == "false":
        return False
    return value


def _python_match(value: Any, value_type: str | None, operator: str, filter_json: str) -> int:
    """SQL function loupe_match: Haystack's own comparison on the stored value (for dates, lists, dicts)."""
    stored = _stored_value(value, value_type)
    try:
        return int(bool(COMPARISON_OPERATORS[operator](stored, json.loads(filter_json), False)))
    except (FilterError, TypeError, ValueError, OverflowError):
        return 0


def _refusal(stored: Any, operator: str, filter_value: Any) -> FilterError | None:
    """Haystack's error for its comparison of the stored value with the filter value, None when it compares them."""
    try:
        COMPARISON_OPERATORS[operator](stored, filter_value, False)
    except FilterError as error:
        return error
    except (TypeError, OverflowError):
        # Haystack crashes here (`[1] > 1`, a date too large for dateutil): it cannot order them either.
        return FilterError(
            f"Can't compare a value of type {type(stored).__name__} with a filter value of type "
            f"{type(filter_value).__name__} using operators '>', '>=', '<', '<='"
        )
    return None


def _python_refuses(value: Any, value_type: str | None, operator: str, filter_json: str) -> int:
    """SQL function loupe_refuses: whether Haystack refuses to order the stored value against the filter value."""
    if value_type == "text":
        return _text_refuses(value, operator, filter_json)
    return int(_refusal(_stored_value(value, value_type), operator, json.loads(filter_json)) is not None)


@functools.lru_cache(maxsize=4096)
def _text_refuses(value: str, operator: str, filter_json: str) -> int:
    # Stored strings repeat (one date per chunk of a record): parse each once per check (OrderingCheck.run clears
    # the cache, as dateutil reads "29" as a day of the current month, which a later month may not have).
    return int(_refusal(value, operator, json.loads(filter_json)) is not None)


def register_functions(db: sqlite3.Connection) -> None:
    """Register the SQL functions that filter_to_sql's expressions and the ordering checks call (loupe_match,
    loupe_refuses) on a connection."""
    db.create_function("loupe_match", 4, _python_match, deterministic=True)
    db.create_function("loupe_refuses", 4, _python_refuses, deterministic=True)


@dataclass(frozen=True)
class OrderingCheck:
    """One ordering comparison's refusal check: `sql` selects (value, type) of the first stored value of the field
    that Haystack cannot order against the filter value; `run` raises Haystack's FilterError when there is one."""

    field: str
    operator: str
    value: Any
    sql: str
    params: tuple[Any, ...]

    def run(self, db: sqlite3.Connection) -> None:
        _text_refuses.cache_clear()
        row = db.execute(self.sql, self.params).fetchone()
        if row is not None:
            self._refuse(_stored_value(*row))

    def _refuse(self, stored: Any) -> NoReturn:
        # Haystack's own error for this pair (a datetime as itself, a date as the ISO string the SQL compares with).
        filter_value = self.value if isinstance(self.value, datetime) else json.loads(_json_filter_value(self.value))
        error = _refusal(stored, self.operator, filter_value) or FilterError(
            "Can't compare these values using operators '>', '>=', '<', '<='"
        )
        shown = repr(stored)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise FilterError(f"{error} (field {self.field!r} holds {shown})") from None


class _FilterSQL:
    """Translates a Haystack filter dict into a SQL boolean expression over `documents` and its parameters."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.checks: dict[tuple[str, tuple[Any, ...]], OrderingCheck] = {}

    def translate(self, condition: dict[str, Any]) -> str:
        if not isinstance(condition, dict):
            raise FilterError(f"a filter condition must be a dict, got {type(condition).__name__}")
        if "field" in condition:
            return self._comparison(condition)
        if "operator" not in condition:
            raise FilterError(f"'operator' key missing in {condition}")
        if "conditions" not in condition:
            raise FilterError(f"'conditions' key missing in {condition}")
        operator, conditions = condition["operator"], condition["conditions"]
        if operator not in ("AND", "OR", "NOT"):
            raise FilterError(f"Unknown logical operator '{operator}'. Valid operators are: ['AND', 'NOT', 'OR']")
        if not isinstance(conditions, list):
            raise FilterError(f"'conditions' must be a list in {condition}")
        parts = [f"({self.translate(item)})" for item in conditions]
        if operator == "OR":
            return " OR ".join(parts) if parts else "0"
        conjunction = " AND ".join(parts) if parts else "1"
        # Every NOT sees a two-valued operand: NULL (unknown) always means "does not match", as in Haystack.
        return f"NOT coalesce(({conjunction}), 0)" if operator == "NOT" else conjunction

    def _use(self, sql: str, params: Iterable[Any]) -> str:
        self.params.extend(params)
        return sql

    def _value(self, operand: Operand) -> str:
        return self._use(operand.value_sql, operand.value_params)

    def _type(self, operand: Operand) -> str:
        return self._use(operand.type_sql, operand.type_params)

    def _python(self, operand: Operand, operator: str, value: Any) -> str:
        value_sql = self._value(operand)
        type_sql = self._type(operand)
        return self._use(f"loupe_match({value_sql}, {type_sql}, ?, ?)", (operator, _json_filter_value(value)))

    def _comparison(self, condition: dict[str, Any]) -> str:
        if "operator" not in condition:
            raise FilterError(f"'operator' key missing in {condition}")
        if "value" not in condition:
            raise FilterError(f"'value' key missing in {condition}")
        field, operator, value = condition["field"], condition["operator"], condition["value"]
        if not isinstance(field, str):
            raise FilterError(f"'field' must be a string in {condition}")
        operand = field_operand(field)
        if isinstance(value, tuple):
            value = list(value)
        if operator == "==":
            return self._equal(operand, value)
        if operator == "!=":
            return f"NOT coalesce(({self._equal(operand, value)}), 0)"
        if operator in ("in", "not in"):
            if not isinstance(value, list):
                raise FilterError(
                    f"Filter value must be a `list` when using operator 'in' or 'not in', received type '{type(value)}'"
                )
            expression = self._in(operand, value)
            return expression if operator == "in" else f"NOT coalesce(({expression}), 0)"
        if operator in (">", ">=", "<", "<="):
            return self._ordering(field, operand, operator, value)
        raise FilterError(
            f"Unknown comparison operator '{operator}'. Valid operators are: {sorted(COMPARISON_OPERATORS)}"
        )

    def _equal(self, operand: Operand, value: Any) -> str:
        if value is None:
            return f"{self._value(operand)} IS NULL"
        if isinstance(value, (bool, int, float)):
            return self._use(f"{self._value(operand)} IS ?", (value,))
        if isinstance(value, str) and not _looks_like_date(value):
            value_sql = self._value(operand)
            # json_extract returns arrays and objects as JSON text: only a JSON string equals a string.
            return self._use(f"({value_sql} IS ? AND ", (value,)) + f"coalesce({self._type(operand)}, '') = 'text')"
        return self._python(operand, "==", value)

    def _in(self, operand: Operand, values: list[Any]) -> str:
        numbers = [v for v in values if isinstance(v, (bool, int, float))]
        strings = [v for v in values if isinstance(v, str) and not _looks_like_date(v)]
        others = [v for v in values if v is not None and not isinstance(v, (bool, int, float)) and v not in strings]
        parts = []
        if any(v is None for v in values):
            parts.append(f"{self._value(operand)} IS NULL")
        if numbers:
            parts.append(self._in_list(operand, numbers))
        if strings:
            parts.append(f"({self._in_list(operand, strings)} AND coalesce({self._type(operand)}, '') = 'text')")
        parts.extend(self._python(operand, "==", v) for v in others)
        return " OR ".join(f"({part})" for part in parts) if parts else "0"

    def _in_list(self, operand: Operand, values: list[Any]) -> str:
        value_sql = self._value(operand)
        if len(values) <= SQL_CHUNK:
            return self._use(f"{value_sql} IN ({', '.join('?' * len(values))})", values)
        return self._use(f"{value_sql} IN (SELECT value FROM json_each(?))", (json.dumps(values),))

    def _ordering(self, field: str, operand: Operand, operator: str, value: Any) -> str:
        if isinstance(value, list):
            raise FilterError(f"Filter value can't be of type {type(value)} using operators '>', '>=', '<', '<='")
        if value is None:
            return "0"  # Haystack: None never compares
        if isinstance(value, (bool, int, float)):
            self._check(field, operand, operator, value)
            type_sql = self._type(operand)
            return self._use(f"(coalesce({type_sql}, '') IN {_NUMERIC_TYPES} AND ", ()) + self._use(
                f"{self._value(operand)} {operator} ?)", (value,)
            )
        if isinstance(value, str):
            try:
                COMPARISON_OPERATORS[operator]("2000-01-01", value, False)  # raises FilterError unless a date
            except TypeError as error:
                raise FilterError(f"can't compare {value!r} using '{operator}': {error}") from None
        elif not isinstance(value, (datetime, date)):
            raise FilterError(f"can't compare values of type {type(value).__name__} using '{operator}'")
        self._check(field, operand, operator, value)
        return self._python(operand, operator, value)

    def _check(self, field: str, operand: Operand, operator: str, value: Any) -> None:
        """Record the query for the first stored value Haystack cannot order against `value`. Haystack refuses
        the same values for all four operators, so a field compared twice with one value is checked once."""
        v, t = operand.value_sql, operand.type_sql
        if isinstance(value, (bool, int, float)):
            # Haystack orders a number against numbers and booleans only; json_extract returns strings, lists and
            # dicts as text, and text sorts after every number: `>= ''` is exactly "not a number", and indexable.
            sql = f"SELECT {v}, {t} FROM documents WHERE {v} >= '' LIMIT 1"
            params = (*operand.value_params, *operand.type_params, *operand.value_params)
        else:
            # A date: only date strings compare, and only Haystack's parser knows which strings are dates.
            sql = (
                f"SELECT {v}, {t} FROM documents WHERE {v} IS NOT NULL "
                f"AND (coalesce({t}, '') <> 'text' OR loupe_refuses({v}, {t}, ?, ?)) LIMIT 1"
            )
            pair = (*operand.value_params, *operand.type_params)  # each "{v}, {t}" above
            params = (*pair, *pair, *pair, ">", _json_filter_value(value))
        self.checks.setdefault((sql, params), OrderingCheck(field, operator, value, sql, params))


def filter_to_sql(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """A SQL boolean expression over `documents` (columns id, content, meta, embedding, extra) and its parameters.

    The translation alone: it does not run the ordering checks on stored values (see `checked_filter_sql`).

    :raises FilterError: on a malformed filter or an operator/value combination Haystack rejects.
    """
    translator = _FilterSQL()
    return translator.translate(filters), translator.params


def checked_filter_sql(db: sqlite3.Connection, filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """filter_to_sql's expression and parameters, after checking the stored documents on `db` (in the caller's
    transaction, so that the check and the filter's query read one snapshot).

    The rule: the filter is refused when Haystack would refuse one of its comparisons on some stored document;
    otherwise the expression selects exactly Haystack's documents. Filters without ordering comparisons (scope
    filters: `==`, `in`) run no check.

    :raises FilterError: on a malformed filter, or when an ordering comparison meets a stored value Haystack cannot
        order against its filter value (Haystack's message, with the field and that value).
    """
    translator = _FilterSQL()
    where = translator.translate(filters)
    for check in translator.checks.values():
        check.run(db)
    return where, translator.params


def validate_filters(filters: dict[str, Any] | None) -> None:
    """Reject filters in Haystack's legacy syntax (neither 'operator' nor 'conditions'), as Haystack's stores do."""
    if filters and "operator" not in filters and "conditions" not in filters:
        raise ValueError(
            "Invalid filter syntax. See https://docs.haystack.deepset.ai/docs/metadata-filtering for details."
        )
