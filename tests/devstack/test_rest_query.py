"""REST emulator units: query-string grammar, header negotiation, error mapping, SQL quoting (no database)."""

from __future__ import annotations

import pytest

from devstack.rest import sql
from devstack.rest.catalog import Column
from devstack.rest.errors import RestError, status_for_sqlstate
from devstack.rest.grammar import Embed, Field, Filter, JsonStep, Logic, OrderTerm, SelectItem
from devstack.rest.negotiate import parse_accept, parse_prefer, pick_schema
from devstack.rest.query import parse_query, parse_select


def test_select_items() -> None:
    assert parse_select("*") == (SelectItem(Field("*")),)
    assert parse_select("") == (SelectItem(Field("*")),)
    items = parse_select('id, alias:name,"odd, col",n::text,data->a->>0,"q\\"":x')
    assert items[0] == SelectItem(Field("id"))
    assert items[1] == SelectItem(Field("name"), alias="alias")
    assert items[2] == SelectItem(Field("odd, col"))
    assert items[3] == SelectItem(Field("n"), cast="text")
    assert items[4] == SelectItem(Field("data", (JsonStep("->", "a"), JsonStep("->>", "0", index=True))))
    assert items[4].field.output_name == "a"
    assert items[5] == SelectItem(Field("x"), alias='q"')


def test_embedding_select_tree() -> None:
    items = parse_select("id,writer:author!books_author_fkey!inner(name,...country(code)),n:amount.sum()::int,count()")
    assert items[0] == SelectItem(Field("id"))
    assert items[1] == Embed(
        "author",
        (SelectItem(Field("name")), Embed("country", (SelectItem(Field("code")),), spread=True)),
        alias="writer",
        hint="books_author_fkey",
        join="inner",
    )
    assert items[2] == SelectItem(Field("amount"), alias="n", aggregate="sum", agg_cast="int")
    assert items[3] == SelectItem(Field("*"), aggregate="count")
    with pytest.raises(RestError) as err:
        parse_select("id,author!inner")
    assert err.value.code == "PGRST100"


def test_filters_logic_order_and_ranges() -> None:
    qp = parse_query(
        [
            ("select", "id"),
            ("a", "eq.1"),
            ("b", 'not.in.(1,"x,y",3)'),
            ("c", "is.NULL"),
            ("d", "fts(english).cat & dog"),
            ("e", "like.*%"),
            ("or", "(a.eq.1,and(b.gt.2,c.not.is.true),d.in.(1,2))"),
            ("not.and", '(a.eq."x,)",b.cs.{1,2})'),
            ("order", "a.desc.nullslast,b"),
            ("limit", "5"),
            ("offset", "10"),
            ("plain", "value"),
        ]
    )
    a, b, c, d, e, or_, nand = qp.conditions
    assert a == Filter(Field("a"), "eq", "1")
    assert b == Filter(Field("b"), "in", values=("1", "x,y", "3"), negate=True)
    assert c == Filter(Field("c"), "is", "null")
    assert d == Filter(Field("d"), "fts", "cat & dog", language="english")
    assert e == Filter(Field("e"), "like", "*%")
    assert isinstance(or_, Logic) and or_.op == "or" and not or_.negate
    assert or_.children[1] == Logic(
        "and", (Filter(Field("b"), "gt", "2"), Filter(Field("c"), "is", "true", negate=True))
    )
    assert or_.children[2] == Filter(Field("d"), "in", values=("1", "2"))
    assert nand == Logic("and", (Filter(Field("a"), "eq", "x,)"), Filter(Field("b"), "cs", "{1,2}")), negate=True)
    assert qp.order == (OrderTerm(Field("a"), desc=True, nulls="last"), OrderTerm(Field("b")))
    assert (qp.limit, qp.offset) == (5, 10)
    assert qp.rpc_args == {"plain": "value"}


def test_rpc_argument_names_win_over_filter_syntax() -> None:
    qp = parse_query([("mode", "like"), ("x", "eq.1")], rpc_arg_names={"mode"})
    assert qp.rpc_args == {"mode": "like"} and qp.conditions == [Filter(Field("x"), "eq", "1")]


@pytest.mark.parametrize(
    ("key", "value"),
    [("a", "not.eqq.1"), ("a", "is.maybe"), ("a", "in.1,2"), ("or", "(a.eq.1"), ("a", "not.nope.1"), ("order", "a.up")],
)
def test_malformed_parameters_are_pgrst100(key: str, value: str) -> None:
    with pytest.raises(RestError) as err:
        parse_query([(key, value)])
    assert err.value.code == "PGRST100" and err.value.status == 400


def test_columns_and_negative_limit() -> None:
    assert parse_query([("columns", '"b","a","we\\"ird"')]).columns == ("b", "a", 'we"ird')
    assert parse_query([("on_conflict", "ws,k")]).on_conflict == ("ws", "k")
    with pytest.raises(RestError) as err:
        parse_query([("limit", "-1")])
    assert err.value.code == "PGRST103"


def test_prefer_accept_and_profiles() -> None:
    prefs = parse_prefer(["return=representation,count=exact", "resolution=merge-duplicates, missing=default"])
    assert prefs.representation and prefs.counting and prefs.missing_default
    assert prefs.resolution == "merge-duplicates"
    assert parse_prefer(["bogus=1"]).applied == []
    with pytest.raises(RestError) as strict:
        parse_prefer(["handling=strict, bogus=1"])
    assert strict.value.code == "PGRST122"
    assert parse_accept("application/vnd.pgrst.object+json").singular
    assert not parse_accept("*/*").singular and not parse_accept(None).singular
    assert parse_accept("application/vnd.pgrst.array+json;nulls=stripped").strip_nulls
    with pytest.raises(RestError) as csv:
        parse_accept("text/xml")
    assert csv.value.code == "PGRST107"
    assert parse_accept("text/csv").csv
    assert pick_schema("GET", None, None, ("public", "graphql_public")) == "public"
    assert pick_schema("POST", "ignored", "graphql_public", ("public", "graphql_public")) == "graphql_public"
    with pytest.raises(RestError) as hidden:
        pick_schema("GET", "auth", None, ("public",))
    assert hidden.value.status == 406 and hidden.value.code == "PGRST106"


@pytest.mark.parametrize(
    ("code", "message", "authenticated", "status"),
    [
        ("23505", "", False, 409),
        ("23503", "", False, 409),
        ("23502", "", False, 400),
        ("42501", "", False, 401),
        ("42501", "", True, 403),
        ("P0001", "", False, 400),
        ("PT402", "", False, 402),
        ("P0002", "", False, 500),
        ("XX000", "", False, 500),
        ("40001", "", False, 500),
        ("42P17", "", False, 500),
        ("08006", "", False, 503),
        ("53300", "", False, 503),
        ("53400", "", False, 500),
        ("25006", "", False, 405),
        ("42883", "", False, 404),
        ("42P01", "", False, 404),
        ("22023", "bad value", False, 400),
        ("22023", 'role "x" does not exist', True, 401),
        ("21000", "DELETE requires a WHERE clause", False, 400),
        ("21000", "more than one row returned by a subquery", False, 500),
        ("22P02", "", False, 400),
    ],
)
def test_sqlstate_to_http_status(code: str, message: str, authenticated: bool, status: int) -> None:
    assert status_for_sqlstate(code, message, authenticated=authenticated) == status


def test_identifiers_are_quoted_and_values_bound() -> None:
    scope = sql.Scope(sql.ident('t"x'), 't"x', {'we"ird': Column('we"ird', "text", "text", "S")})
    params = sql.Params()
    where = sql.where_sql(scope, [Filter(Field('we"ird'), "eq", "'; drop table x; --")], params)
    assert where == ' WHERE ("t""x"."we""ird" = CAST($1::text AS text))'
    assert params.values == ["'; drop table x; --"]
    with pytest.raises(RestError) as err:
        sql.where_sql(scope, [Filter(Field("nope"), "eq", "1")], params)
    assert err.value.code == "42703"
