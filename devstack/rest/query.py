"""Parsing of PostgREST's query string: `select`, filters, `and`/`or` trees, `order`, `limit`/`offset`,
`columns`, `on_conflict`, and the RPC arguments of GET calls.

The grammar follows PostgREST's `ApiRequest/QueryParams.hs`: a parameter is a filter when its key is an embed
path or its value starts with an operator; the other non-reserved parameters are RPC arguments (and ignored on
tables, as PostgREST does). Nothing here touches SQL: the parsed forms are turned into SQL by `sql.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from typing import Literal

from devstack.rest.errors import invalid_range, no_relationship, not_implemented, query_param_error
from devstack.rest.grammar import (
    FTS_OPERATORS,
    IS_VALUES,
    OPERATORS,
    RESERVED_ENDINGS,
    Condition,
    Field,
    Filter,
    Logic,
    OrderTerm,
    Scanner,
    SelectItem,
)


@dataclass
class QueryParams:
    select: tuple[SelectItem, ...] = (SelectItem(Field("*")),)
    conditions: list[Condition] = field(default_factory=list)
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    #: non-filter, non-reserved parameters: the arguments of a GET/HEAD RPC call (last value wins)
    rpc_args: dict[str, str] = field(default_factory=dict)


# -- select ---------------------------------------------------------------------------------------------------
def parse_select(text: str, relation: str = "", schema: str = "") -> tuple[SelectItem, ...]:
    if not text.strip():
        return (SelectItem(Field("*")),)
    sc = Scanner(text, "select parameter")
    items: list[SelectItem] = []
    while True:
        sc.skip_ws()
        if sc.take("*"):
            items.append(SelectItem(Field("*")))
        else:
            if sc.peek(2) == "..":
                sc.pos += 2
                raise no_relationship(relation, sc.field_name(), schema)
            first = sc.field_name()
            alias: str | None = None
            if sc.peek() == ":" and sc.peek(2) != "::":
                sc.pos += 1
                alias, first = first, sc.field_name()
            if sc.peek() in ("(", "!"):
                raise no_relationship(relation, first, schema)
            fld = Field(first, sc.json_path())
            cast = sc.identifier() if sc.take("::") else None
            items.append(SelectItem(fld, alias, cast))
        sc.skip_ws()
        if sc.at_end():
            return tuple(items)
        if not sc.take(","):
            raise sc.error('expecting "->>", "->", "::", "," or end of input')


# -- filters --------------------------------------------------------------------------------------------------
def _list_value(sc: Scanner) -> tuple[str, ...]:
    sc.skip_ws()
    sc.expect("(")
    values: list[str] = []
    while True:
        if sc.peek() == '"':
            start = sc.pos
            value = sc.quoted()
            if sc.peek() not in (",", ")"):
                sc.pos = start
                value = _until(sc, ",)")
        else:
            value = _until(sc, ",)")
        values.append(value)
        if sc.take(","):
            continue
        sc.expect(")")
        sc.skip_ws()
        return tuple(values) if values != [""] else ()


def _until(sc: Scanner, stops: str) -> str:
    start = sc.pos
    while not sc.at_end() and sc.text[sc.pos] not in stops:
        sc.pos += 1
    return sc.text[start : sc.pos]


def _op_expr(sc: Scanner, fld: Field, *, in_logic: bool) -> Filter:
    negate = sc.take("not.")
    if sc.take("in."):
        return Filter(fld, "in", values=_list_value(sc), negate=negate)
    if sc.take("is."):
        raw = _single_value(sc, in_logic)
        if raw.lower() not in IS_VALUES:
            raise sc.error("expecting null or trilean value (unknown, true, false)")
        return Filter(fld, "is", raw.lower(), negate=negate)
    start = sc.pos
    name = _until(sc, ".(")
    if name in FTS_OPERATORS:
        language = None
        if sc.take("("):
            language = sc.identifier()
            sc.expect(")")
        sc.expect(".")
        return Filter(fld, name, _single_value(sc, in_logic), language=language, negate=negate)
    if name in OPERATORS and sc.take("."):
        return Filter(fld, name, _single_value(sc, in_logic), negate=negate)
    sc.pos = start
    raise query_param_error(
        f'"failed to parse filter ({sc.text[start:]})" (line 1, column {start + 1})',
        f"unknown single value operator {name}" if name else "expecting operator (eq, gt, ...)",
    )


def _single_value(sc: Scanner, in_logic: bool) -> str:
    if not in_logic:
        value = sc.text[sc.pos :]
        sc.pos = len(sc.text)
        return value
    if sc.peek() == '"':
        start = sc.pos
        value = sc.quoted()
        if sc.at_end() or sc.peek() in ",)":
            return value
        sc.pos = start
    if sc.peek() == "{":
        start = sc.pos
        _until(sc, "}")
        if sc.take("}"):
            return sc.text[start : sc.pos]
        sc.pos = start
    return _until(sc, ",)")


def looks_like_filter(key: str, value: str) -> bool:
    """PostgREST's `isParam` test (named the other way round there): is this a filter rather than an RPC arg?"""
    if "." in key:
        return True
    parts = value.split(".")
    if len(parts) >= 2 and parts[0] == "not":
        return True
    if parts[0] in ("is", "in") or parts[0] in OPERATORS or parts[0] in FTS_OPERATORS:
        return True
    head = value.split("(")
    return len(head) >= 2 and head[0] in FTS_OPERATORS


def parse_filter(key: str, value: str) -> Filter:
    ksc = Scanner(key, "tree path")
    fld = ksc.field()
    if ksc.peek() == ".":
        raise not_implemented(f"Filters on embedded resources ({key}) are not supported by the devstack emulator")
    if not ksc.at_end():
        raise ksc.error('expecting "->>", "->" or end of input')
    vsc = Scanner(value, "filter")
    return _op_expr(vsc, fld, in_logic=False)


def parse_logic(key: str, value: str) -> Logic:
    parts = key.split(".")
    if [p for p in parts[:-1] if p != "not"]:
        raise not_implemented(f"Logic filters on embedded resources ({key}) are not supported by the devstack emulator")
    negate = "not" in parts[:-1]
    sc = Scanner(value, "logic tree")
    tree = _logic_body(sc, "and" if parts[-1] == "and" else "or", negate)
    if not sc.at_end():
        raise sc.error("expecting end of input")
    return tree


def _logic_body(sc: Scanner, op: Literal["and", "or"], negate: bool) -> Logic:
    sc.skip_ws()
    sc.expect("(")
    children: list[Condition] = []
    while True:
        sc.skip_ws()
        children.append(_logic_item(sc))
        sc.skip_ws()
        if sc.take(","):
            continue
        sc.expect(")")
        return Logic(op, tuple(children), negate)


def _logic_item(sc: Scanner) -> Condition:
    start = sc.pos
    negate = sc.take("not.")
    if sc.peek(4) == "and(":
        sc.pos += 3
        return _logic_body(sc, "and", negate)
    if sc.peek(3) == "or(":
        sc.pos += 2
        return _logic_body(sc, "or", negate)
    sc.pos = start
    fld = sc.field()
    sc.expect(".")
    return _op_expr(sc, fld, in_logic=True)


# -- order, columns, ranges -----------------------------------------------------------------------------------
def parse_order(text: str) -> tuple[OrderTerm, ...]:
    sc = Scanner(text, "order")
    terms: list[OrderTerm] = []
    while True:
        fld = sc.field()
        if sc.peek() == "(":
            raise not_implemented("Ordering by embedded resources is not supported by the devstack emulator")
        desc = False
        nulls: Literal["first", "last"] | None = None
        if sc.take(".asc"):
            pass
        elif sc.take(".desc"):
            desc = True
        if sc.take(".nullsfirst"):
            nulls = "first"
        elif sc.take(".nullslast"):
            nulls = "last"
        terms.append(OrderTerm(fld, desc, nulls))
        sc.skip_ws()
        if sc.at_end():
            return tuple(terms)
        if not sc.take(","):
            raise sc.error('expecting "asc", "desc", "nullsfirst", "nullslast", "," or end of input')


def parse_columns(text: str, what: str = "columns parameter") -> tuple[str, ...]:
    sc = Scanner(text, what)
    names: list[str] = []
    while True:
        names.append(sc.field_name())
        if sc.at_end():
            return tuple(dict.fromkeys(names))
        if not sc.take(","):
            raise sc.error('expecting "," or end of input')


def _parse_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None  # PostgREST ignores a limit/offset it cannot read


# -- the whole query string -----------------------------------------------------------------------------------
def parse_query(
    pairs: Iterable[tuple[str, str]], relation: str = "", schema: str = "", rpc_arg_names: Set[str] = frozenset()
) -> QueryParams:
    """`rpc_arg_names`: for GET/HEAD RPC, parameters named like an argument of the function are arguments even when
    their value looks like a filter (`?mode=like`)."""
    qp = QueryParams()
    for key, value in pairs:
        last = key.split(".")[-1]
        if key == "select":
            qp.select = parse_select(value, relation, schema)
        elif key == "columns":
            qp.columns = parse_columns(value)
        elif key == "on_conflict":
            qp.on_conflict = parse_columns(value, "on_conflict parameter")
        elif last in RESERVED_ENDINGS:
            if key != last and last in ("order", "limit", "offset"):
                raise not_implemented(f"'{key}' applies to an embedded resource; embedding is not supported")
            if not value:
                continue
            if last in ("and", "or"):
                qp.conditions.append(parse_logic(key, value))
            elif last == "order":
                qp.order = qp.order + parse_order(value)
            elif last == "limit":
                limit = _parse_int(value)
                if limit is not None and limit < 0:
                    raise invalid_range("Limit should be greater than or equal to zero.")
                qp.limit = limit if limit is not None else qp.limit
            else:
                qp.offset = max(_parse_int(value) or 0, 0)
        elif key not in rpc_arg_names and looks_like_filter(key, value):
            qp.conditions.append(parse_filter(key, value))
        else:
            qp.rpc_args[key] = value
    return qp
