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

from devstack.rest.errors import invalid_range, query_param_error
from devstack.rest.grammar import (
    AGGREGATES,
    FTS_OPERATORS,
    IS_VALUES,
    OPERATORS,
    QUANTIFIABLE,
    RESERVED_ENDINGS,
    Condition,
    Embed,
    Field,
    Filter,
    Item,
    Logic,
    OrderTerm,
    Scanner,
    SelectItem,
)


@dataclass
class SubParams:
    """Filters, order and range of one embedded resource (`cities.name=eq.x`, `cities.order=name`)."""

    conditions: list[Condition] = field(default_factory=list)
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0


@dataclass
class QueryParams:
    select: tuple[Item, ...] = (SelectItem(Field("*")),)
    conditions: list[Condition] = field(default_factory=list)
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    #: non-filter, non-reserved parameters: the arguments of a GET/HEAD RPC call (last value wins)
    rpc_args: dict[str, str] = field(default_factory=dict)
    #: per embed path (labels from the root): its filters, order and range
    sub: dict[tuple[str, ...], SubParams] = field(default_factory=dict)

    def at(self, path: tuple[str, ...]) -> SubParams:
        return self.sub.setdefault(path, SubParams())


# -- select ---------------------------------------------------------------------------------------------------
def parse_select(text: str, relation: str = "", schema: str = "") -> tuple[Item, ...]:
    if not text.strip():
        return (SelectItem(Field("*")),)
    sc = Scanner(text, "select parameter")
    items = _select_list(sc)
    if not sc.at_end():
        raise sc.error('expecting "->>", "->", "::", ",", "(" or end of input')
    return items


def _select_list(sc: Scanner) -> tuple[Item, ...]:
    items: list[Item] = []
    while True:
        sc.skip_ws()
        items.append(_select_item(sc))
        sc.skip_ws()
        if not sc.take(","):
            return tuple(items)


def _select_item(sc: Scanner) -> Item:
    if sc.take("*"):
        return SelectItem(Field("*"))
    spread = sc.take("...")
    first = sc.field_name()
    alias: str | None = None
    if sc.peek() == ":" and sc.peek(2) != "::":
        sc.pos += 1
        alias, first = first, sc.field_name()
    if first == "count" and sc.take("()"):
        agg_cast = sc.identifier() if sc.take("::") else None
        return SelectItem(Field("*"), alias, aggregate="count", agg_cast=agg_cast)
    hint: str | None = None
    join: Literal["inner", "left"] | None = None
    while sc.take("!"):
        word = sc.field_name()
        if word == "inner":
            join = "inner"
        elif word == "left":
            join = "left"
        else:
            hint = word
    if sc.take("("):
        sc.skip_ws()
        children: tuple[Item, ...] = () if sc.peek() == ")" else _select_list(sc)
        sc.expect(")")
        return Embed(first, children, alias, hint, join, spread)
    if spread or hint or join:
        raise sc.error('expecting "("')
    fld = Field(first, sc.json_path())
    cast = sc.identifier() if sc.take("::") else None
    aggregate: str | None = None
    agg_cast = None
    if sc.peek() == ".":
        aggregate = next((a for a in AGGREGATES if sc.take(f".{a}()")), None)
        if aggregate is None:
            raise sc.error("expecting an aggregate (sum(), avg(), max(), min(), count())")
        agg_cast = sc.identifier() if sc.take("::") else None
    return SelectItem(fld, alias, cast, aggregate, agg_cast)


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
    if name in QUANTIFIABLE and sc.peek() == "(":
        for quantifier in ("any", "all"):
            if sc.take(f"({quantifier})."):
                return Filter(fld, name, _single_value(sc, in_logic), negate=negate, quantifier=quantifier)
    if name in OPERATORS and sc.take("."):
        return Filter(fld, name, _single_value(sc, in_logic), negate=negate)
    sc.pos = start
    found = f'unexpected "{sc.text[start]}"' if start < len(sc.text) else "unexpected end of input"
    raise query_param_error(
        f'"failed to parse filter ({sc.text})" (line 1, column {start + 1})',
        f'{found} expecting "not" or operator (eq, gt, ...)',
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
    return parse_path_filter(key, value)[1]


def parse_path_filter(key: str, value: str) -> tuple[tuple[str, ...], Filter]:
    """`cities.name=eq.x`: the embed path (`("cities",)`) and the filter on its column."""
    ksc = Scanner(key, "tree path")
    path: list[str] = []
    fld = ksc.field()
    while ksc.peek() == "." and not fld.path:
        ksc.pos += 1
        path.append(fld.name)
        fld = ksc.field()
    if not ksc.at_end():
        raise ksc.error('expecting "->>", "->" or end of input')
    vsc = Scanner(value, "filter")
    return tuple(path), _op_expr(vsc, fld, in_logic=False)


def parse_logic(key: str, value: str) -> Logic:
    return parse_path_logic(key, value)[1]


def parse_path_logic(key: str, value: str) -> tuple[tuple[str, ...], Logic]:
    parts = key.split(".")
    prefix = parts[:-1]
    negate = bool(prefix) and prefix[-1] == "not"
    if negate:
        prefix = prefix[:-1]
    sc = Scanner(value, "logic tree")
    tree = _logic_body(sc, "and" if parts[-1] == "and" else "or", negate)
    if not sc.at_end():
        raise sc.error("expecting end of input")
    return tuple(prefix), tree


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
        relation: str | None = None
        if not fld.path and sc.take("("):
            relation = fld.name
            fld = sc.field()
            sc.expect(")")
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
        terms.append(OrderTerm(fld, desc, nulls, relation))
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
    pairs: Iterable[tuple[str, str]],
    relation: str = "",
    schema: str = "",
    rpc_arg_names: Set[str] = frozenset(),
    *,
    strict: bool = False,
) -> QueryParams:
    """`rpc_arg_names`: for GET/HEAD RPC, parameters named like an argument of the function are arguments even when
    their value looks like a filter (`?mode=like`). `strict`: every other parameter is a filter and must parse as
    one (tables and POST RPC, as in PostgREST), so an unknown operator is PGRST100, never silently dropped."""
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
            if not value:
                continue
            if last in ("and", "or"):
                path, tree = parse_path_logic(key, value)
                (qp.at(path).conditions if path else qp.conditions).append(tree)
                continue
            path = tuple(key.split(".")[:-1])
            if last == "order":
                terms = parse_order(value)
                if path:
                    qp.at(path).order = qp.at(path).order + terms
                else:
                    qp.order = qp.order + terms
            elif last == "limit":
                limit = _parse_int(value)
                if limit is not None and limit < 0:
                    raise invalid_range("Limit should be greater than or equal to zero.")
                if path:
                    qp.at(path).limit = limit if limit is not None else qp.at(path).limit
                else:
                    qp.limit = limit if limit is not None else qp.limit
            else:
                offset = max(_parse_int(value) or 0, 0)
                if path:
                    qp.at(path).offset = offset
                else:
                    qp.offset = offset
        elif key not in rpc_arg_names and (strict or looks_like_filter(key, value)):
            path, flt = parse_path_filter(key, value)
            (qp.at(path).conditions if path else qp.conditions).append(flt)
        else:
            qp.rpc_args[key] = value
    return qp


def embeds(items: Iterable[Item]) -> list[Embed]:
    return [i for i in items if isinstance(i, Embed)]
