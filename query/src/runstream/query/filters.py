"""The run filter language, compiled to parameterized SQL over the query views.

Grammar (keywords are case-insensitive)::

    filter     := or
    or         := and ( OR and )*
    and        := term ( AND term )*
    term       := '(' or ')' | comparison
    comparison := field op literal
                | field [NOT] IN '(' literal ( ',' literal )* ')'
                | field [NOT] LIKE|ILIKE string
    field      := ( params | metrics | tags | labels | attributes ) '.' name | attribute
    name       := [A-Za-z0-9_-./:]+ | `backquoted` | "double quoted"
    attribute  := run_id | name | collection | status | start_time | end_time
    op         := = | != | <> | < | <= | > | >=
    literal    := 'single quoted' ('' escapes a quote) | number

Examples: ``params.lr > 0.01 AND metrics.loss < 0.5``, ``tags.team IN ('a', 'b') OR
status = 'FAILED'``, ``name LIKE 'bert-%' AND start_time >= '2024-05-01'``.

Values never enter the SQL text: every name and literal becomes a bound parameter, so quotes,
semicolons or SQL in a value cannot change the statement. A param compared to a number is
compared as a number (runs whose value is not numeric do not match). ``start_time`` and
``end_time`` compare with a number (milliseconds since the epoch, like MLflow) or an ISO date.
The SQL is a condition on the ``runs`` view aliased ``r``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from runstream.query.exceptions import FilterError

MAX_RESULTS_LIMIT = 100_000

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>`[^`]*`|"[^"]*")
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z0-9_\-/:]+)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "asc", "desc"}
_ENTITIES = {
    "params": "params",
    "param": "params",
    "parameters": "params",
    "metrics": "metrics",
    "metric": "metrics",
    "tags": "tags",
    "tag": "tags",
    "labels": "labels",
    "label": "labels",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_ATTRIBUTES = {
    "run_id": "run_id",
    "id": "run_id",
    "name": "name",
    "run_name": "name",
    "collection": "collection",
    "experiment": "collection",
    "status": "status",
    "start_time": "start_time_us",
    "end_time": "end_time_us",
}
_TIMES = {"start_time_us", "end_time_us"}
_Convert = Callable[[str], str]
_SQL_OPS = {"=": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # string, number, op, punct, word, name (quoted name), end
    text: str
    position: int

    @property
    def keyword(self) -> str | None:
        lowered = self.text.lower()
        return lowered if self.kind == "word" and lowered in _KEYWORDS else None


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled clause: SQL text with ``?`` placeholders and the values to bind, in order,
    and the ``(entity, key)`` pairs it reads from the params, metrics, tags and labels
    tables (only their rows of those keys are needed)."""

    sql: str
    params: tuple[object, ...]
    keys: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class _Field:
    entity: str  # params, metrics, tags, labels, attributes
    name: str  # the key, or the runs column for attributes
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(f"unexpected character {text[position]!r}", text, position)
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "quoted":
            tokens.append(_Token("name", value[1:-1], position))
        elif kind != "space":
            tokens.append(_Token(kind, value, position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


MAX_NESTING = 50
"""Parentheses a filter may nest (deeper ones are a FilterError, never a RecursionError)."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.params: list[object] = []
        self.keys: set[tuple[str, str]] = set()
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, reason: str, token: _Token | None = None) -> FilterError:
        return FilterError(reason, self.text, (token or self.current).position)

    def advance(self) -> _Token:
        token = self.current
        if token.kind != "end":
            self.index += 1
        return token

    def accept_keyword(self, word: str) -> bool:
        if self.current.keyword == word:
            self.advance()
            return True
        return False

    def expect_punct(self, text: str) -> None:
        if self.current.kind != "punct" or self.current.text != text:
            raise self.fail(f"expected {text!r}")
        self.advance()

    def parse_filter(self) -> str:
        sql = self.parse_or()
        if self.current.kind != "end":
            raise self.fail(f"unexpected {self.current.text!r}; expected AND, OR or the end")
        return sql

    def parse_or(self) -> str:
        parts = [self.parse_and()]
        while self.accept_keyword("or"):
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def parse_and(self) -> str:
        parts = [self.parse_term()]
        while self.accept_keyword("and"):
            parts.append(self.parse_term())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def parse_term(self) -> str:
        if self.current.kind == "punct" and self.current.text == "(":
            if self.depth >= MAX_NESTING:
                raise self.fail(f"parentheses nested more than {MAX_NESTING} deep")
            self.advance()
            self.depth += 1
            inner = self.parse_or()
            self.depth -= 1
            self.expect_punct(")")
            return inner
        return self.parse_comparison()

    def parse_field(self) -> _Field:
        token = self.current
        if token.kind != "word" or token.keyword is not None:
            raise self.fail("expected a field such as params.lr, metrics.loss, tags.team or status")
        self.advance()
        word = token.text.lower()
        if self.current.kind == "punct" and self.current.text == ".":
            entity = _ENTITIES.get(word)
            if entity is None:
                raise self.fail(
                    f"unknown entity {token.text!r}: use params, metrics, tags, labels or attributes",
                    token,
                )
            self.advance()
            name_token = self.current
            if name_token.kind not in ("word", "name", "number") or not name_token.text:
                raise self.fail(f"expected a {entity} name after '.'")
            self.advance()
            name = self._dotted(name_token)
            if entity == "attributes":
                return self._attribute(name, name_token)
            return _Field(entity, name, token.position)
        return self._attribute(token.text, token)

    def _dotted(self, first: _Token) -> str:
        """A bare key may contain dots (``params.optimizer.lr``): join adjacent parts."""
        name = first.text
        if first.kind == "name":
            return name
        end = first.position + len(first.text)
        while (
            self.current.kind == "punct"
            and self.current.text == "."
            and self.current.position == end
            and self.tokens[self.index + 1].kind in ("word", "number")
            and self.tokens[self.index + 1].position == end + 1
        ):
            self.advance()
            part = self.advance()
            name += "." + part.text
            end = part.position + len(part.text)
        return name

    def _attribute(self, name: str, token: _Token) -> _Field:
        column = _ATTRIBUTES.get(name.lower())
        if column is None:
            known = ", ".join(sorted(_ATTRIBUTES))
            raise self.fail(f"unknown attribute {name!r}: use one of {known}", token)
        return _Field("attributes", column, token.position)

    def parse_comparison(self) -> str:
        field = self.parse_field()
        negate = self.accept_keyword("not")
        if self.accept_keyword("in"):
            return self._in(field, negate)
        for word in ("like", "ilike"):
            if self.accept_keyword(word):
                literal = self.parse_literal()
                if not isinstance(literal, str):
                    raise self.fail(
                        f"{word.upper()} needs a quoted string", self.tokens[self.index - 1]
                    )
                like = ("NOT " if negate else "") + word.upper()
                return self._condition(field, _like(like), [literal])
        if negate:
            raise self.fail("expected IN, LIKE or ILIKE after NOT")
        if self.current.kind != "op":
            raise self.fail("expected a comparison operator (=, !=, <, <=, >, >=, IN, LIKE)")
        operator = _SQL_OPS[self.advance().text]
        literal_token = self.current
        literal = self.parse_literal()
        value, column_of = self._typed(field, literal, literal_token)
        return self._condition(field, lambda c: f"{column_of(c)} {operator} ?", [value])

    def _in(self, field: _Field, negate: bool) -> str:
        self.expect_punct("(")
        values: list[object] = []
        column_of = None
        while True:
            literal_token = self.current
            value, column_of = self._typed(field, self.parse_literal(), literal_token)
            values.append(value)
            if self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                continue
            self.expect_punct(")")
            break
        marks = ", ".join("?" for _ in values)
        operator = "NOT IN" if negate else "IN"
        assert column_of is not None
        convert = column_of
        return self._condition(field, lambda c: f"{convert(c)} {operator} ({marks})", values)

    def parse_literal(self) -> object:
        token = self.current
        if token.kind == "string":
            self.advance()
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            self.advance()
            number = float(token.text)
            return (
                int(number)
                if number.is_integer() and re.fullmatch(r"[-+]?\d+", token.text)
                else number
            )
        raise self.fail("expected a value: a 'quoted string' or a number")

    def _typed(self, field: _Field, literal: object, token: _Token) -> tuple[object, _Convert]:
        """The bound value and the SQL expression to compare it with."""
        if field.entity == "metrics":
            if isinstance(literal, str):
                raise self.fail("a metric is compared with a number", token)
            return float(literal), _same  # type: ignore[arg-type]
        if field.entity == "attributes" and field.name in _TIMES:
            if isinstance(literal, str):
                try:
                    moment = datetime.fromisoformat(literal)
                except ValueError:
                    raise self.fail(f"{literal!r} is not an ISO date or time", token) from None
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                return int(moment.timestamp() * 1_000_000), _same
            return int(float(literal) * 1000), _same  # type: ignore[arg-type]
        if isinstance(literal, str):
            return literal, _same
        if field.entity == "attributes":
            raise self.fail(f"attribute {field.name} is compared with a quoted string", token)
        return float(literal), _as_double  # type: ignore[arg-type]

    def _condition(self, field: _Field, compare: _Convert, values: list[object]) -> str:
        if field.entity == "attributes":
            self.params.extend(values)
            return compare(f"r.{field.name}")
        self.params.append(field.name)
        self.params.extend(values)
        self.keys.add((field.entity, field.name))
        return (
            f"EXISTS (SELECT 1 FROM {field.entity} x WHERE x.run_id = r.run_id "
            f"AND x.key = ? AND {compare('x.value')})"
        )

    def parse_order(self) -> str:
        field = self.parse_field()
        direction = "ASC"
        if self.accept_keyword("desc"):
            direction = "DESC"
        else:
            self.accept_keyword("asc")
        if self.current.kind != "end":
            raise self.fail("expected ASC, DESC or the end of the order-by clause")
        if field.entity == "attributes":
            return f"r.{field.name} {direction} NULLS LAST"
        self.params.append(field.name)
        self.keys.add((field.entity, field.name))
        value = "TRY_CAST(x.value AS DOUBLE)" if field.entity == "params" else "x.value"
        return (
            f"(SELECT {value} FROM {field.entity} x WHERE x.run_id = r.run_id AND x.key = ?) "
            f"{direction} NULLS LAST"
        )


def _like(operator: str) -> _Convert:
    return lambda column: f"{column} {operator} ?"


def _same(column: str) -> str:
    return column


def _as_double(column: str) -> str:
    return f"TRY_CAST({column} AS DOUBLE)"


def compile_filter(text: str | None) -> Compiled:
    """Compile a filter string to a condition on ``runs r`` with bound parameters.

    An empty or None filter matches every run (``TRUE``).

    Raises:
        FilterError: the string is not in the filter language (the message shows where).
    """
    if text is None or not text.strip():
        return Compiled("TRUE", ())
    parser = _Parser(text)
    sql = parser.parse_filter()
    return Compiled(sql, tuple(parser.params), frozenset(parser.keys))


def compile_order(clauses: list[str] | tuple[str, ...] | None) -> Compiled:
    """Compile order-by clauses (``"metrics.loss DESC"``, ``"start_time"``...) to SQL.

    The default, and the last tie-breaker, is ``start_time DESC, run_id``.

    Raises:
        FilterError: a clause is not ``field [ASC|DESC]``.
    """
    parts: list[str] = []
    params: list[object] = []
    keys: set[tuple[str, str]] = set()
    for clause in clauses or ():
        parser = _Parser(clause)
        parts.append(parser.parse_order())
        params.extend(parser.params)
        keys |= parser.keys
    parts.extend(["r.start_time_us DESC NULLS LAST", "r.run_id"])
    return Compiled(", ".join(parts), tuple(params), frozenset(keys))


def check_max_results(max_results: int) -> int:
    """Return ``max_results`` if it is an int in 1..MAX_RESULTS_LIMIT.

    Raises:
        FilterError: it is not.
    """
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise FilterError(f"max_results must be an int, not {max_results!r}", str(max_results), 0)
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise FilterError(
            f"max_results must be between 1 and {MAX_RESULTS_LIMIT}", str(max_results), 0
        )
    return max_results
