"""The vocabulary of PostgREST's query string (operators, fields, filters, order terms) and the cursor that
reads one parameter value; `query` assembles them into a request's `QueryParams`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from devstack.rest.errors import RestError, query_param_error

OPERATORS = {
    "eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
    "like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*",
    "cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-",
    "isdistinct": "IS DISTINCT FROM",
}  # fmt: skip
FTS_OPERATORS = {
    "fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery", "wfts": "websearch_to_tsquery"
}  # fmt: skip
#: operators taking the `(any)` / `(all)` modifier with a `{a,b}` list
QUANTIFIABLE = {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"}
IS_VALUES = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}
RESERVED_ENDINGS = {"order", "limit", "offset", "and", "or"}


@dataclass(frozen=True, slots=True)
class JsonStep:
    arrow: Literal["->", "->>"]
    key: str
    index: bool = False


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    path: tuple[JsonStep, ...] = ()

    @property
    def output_name(self) -> str:
        """The JSON key PostgREST gives a selected field: the last json key, else the column name."""
        for step in reversed(self.path):
            if not step.index:
                return step.key
        return self.name


@dataclass(frozen=True, slots=True)
class SelectItem:
    field: Field
    alias: str | None = None
    #: `col::type` (for an aggregate: the cast of its input, `col::int.sum()`)
    cast: str | None = None
    #: `count()`, `col.sum()`, `col.avg()`, `col.min()`, `col.max()`, `col.count()`
    aggregate: str | None = None
    #: `col.sum()::int`: the cast of the aggregate's result
    agg_cast: str | None = None

    @property
    def star(self) -> bool:
        return self.field.name == "*" and not self.field.path and self.aggregate is None


@dataclass(frozen=True, slots=True)
class Embed:
    """`alias:name!hint!inner(items)` or `...name(items)` in `select`: a related resource."""

    name: str
    items: tuple[SelectItem | Embed, ...]
    alias: str | None = None
    hint: str | None = None
    join: Literal["inner", "left"] | None = None
    spread: bool = False

    @property
    def label(self) -> str:
        return self.alias or self.name


Item = SelectItem | Embed
AGGREGATES = ("sum", "avg", "max", "min", "count")


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    op: str
    value: str = ""
    values: tuple[str, ...] = ()
    language: str | None = None
    negate: bool = False
    #: `eq(any)` / `like(all)`: the value is a `{a,b}` list compared with ANY/ALL
    quantifier: Literal["any", "all"] | None = None


@dataclass(frozen=True, slots=True)
class Logic:
    op: Literal["and", "or"]
    children: tuple[Filter | Logic, ...]
    negate: bool = False


Condition = Filter | Logic


@dataclass(frozen=True, slots=True)
class OrderTerm:
    field: Field
    desc: bool = False
    nulls: Literal["first", "last"] | None = None
    #: `order=rel(col)`: a column of an embedded to-one resource
    relation: str | None = None


class Scanner:
    """A cursor over one parameter value; errors read like PostgREST's Parsec messages."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def take(self, literal: str) -> bool:
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str) -> None:
        if not self.take(literal):
            raise self.error(f'expecting "{literal}"')

    def skip_ws(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def error(self, expecting: str = "") -> RestError:
        found = f'unexpected "{self.peek()}"' if not self.at_end() else "unexpected end of input"
        return query_param_error(
            f'"failed to parse {self.what} ({self.text})" (line 1, column {self.pos + 1})',
            f"{found} {expecting}".strip(),
        )

    # -- shared pieces -----------------------------------------------------------------------------------------
    def quoted(self) -> str:
        self.expect('"')
        out: list[str] = []
        while not self.at_end():
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\" and not self.at_end():
                out.append(self.text[self.pos])
                self.pos += 1
            elif ch == '"':
                return "".join(out)
            else:
                out.append(ch)
        raise self.error('expecting "\\""')

    def field_name(self) -> str:
        self.skip_ws()
        if self.peek() == '"':
            name = self.quoted()
        else:
            start = self.pos
            while not self.at_end():
                ch = self.text[self.pos]
                if ch.isalnum() or ch in "_ $" or (ch == "-" and self.peek(2) != "->"):
                    self.pos += 1
                else:
                    break
            name = self.text[start : self.pos].strip()
            if not name:
                raise self.error("expecting field name (* or [a..z0..9_$])")
        self.skip_ws()
        return name

    def json_path(self) -> tuple[JsonStep, ...]:
        steps: list[JsonStep] = []
        while True:
            if self.take("->>"):
                arrow: Literal["->", "->>"] = "->>"
            elif self.take("->"):
                arrow = "->"
            else:
                return tuple(steps)
            start = self.pos
            self.take("-")
            while self.peek().isdigit():
                self.pos += 1
            digits = self.text[start : self.pos]
            rest = self.text[self.pos :]
            if digits.lstrip("-") and (not rest or rest[:2] in ("->", "::") or rest[0] in ".,)"):
                steps.append(JsonStep(arrow, digits, index=True))
            else:
                self.pos = start
                steps.append(JsonStep(arrow, self.field_name()))

    def field(self) -> Field:
        name = self.field_name()
        return Field(name, self.json_path())

    def identifier(self) -> str:
        start = self.pos
        while not self.at_end() and (self.text[self.pos].isalnum() or self.text[self.pos] in "_ $"):
            self.pos += 1
        ident = self.text[start : self.pos].strip()
        if not ident:
            raise self.error("expecting letter or digit")
        return ident
