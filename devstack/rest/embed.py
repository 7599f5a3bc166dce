"""Resource embedding: relationships from foreign keys, and the select tree resolved against them.

A relationship is found the way PostgREST finds it: a foreign key from the parent to the target (many-to-one,
or one-to-one when the key columns are unique), from the target to the parent (one-to-many / one-to-one), or a
junction table holding foreign keys to both (many-to-many). A hint (`target!hint`) names the constraint, a
foreign key column or the junction table; `target` may also be a foreign key column or constraint name of the
parent. Computed fields (a function taking the row type) and computed relationships (such a function returning a
table row or a set of them) are found by name in the relation's schema.

`resolve` turns the parsed `select` into a `Node` tree (catalog lookups happen here); `sql.py` renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from devstack.rest.catalog import Conn, ForeignKey, Relation, SchemaCache
from devstack.rest.errors import RestError, ambiguous_relationship, no_relationship, undefined_column
from devstack.rest.grammar import Embed, Field, Item, SelectItem

Cardinality = Literal["m2o", "o2m", "o2o", "m2m", "fn_one", "fn_many"]


@dataclass(frozen=True)
class Relationship:
    cardinality: Cardinality
    #: pairs (parent column, target column) joining parent and target directly (not m2m / functions)
    pairs: tuple[tuple[str, str], ...] = ()
    #: m2m: the junction, its (junction column, parent column) and (junction column, target column) pairs
    junction: Relation | None = None
    junction_parent: tuple[tuple[str, str], ...] = ()
    junction_target: tuple[tuple[str, str], ...] = ()
    #: computed relationship: the function's schema and name
    function: tuple[str, str] | None = None
    constraint: str = ""
    #: PostgREST's description of the relationship, listed when an embed is ambiguous (PGRST201)
    detail: str = ""

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("m2o", "o2o", "fn_one")


@dataclass
class Node:
    """One level of the select tree: a relation and what is selected from it."""

    relation: Relation
    items: list[SelectItem] = field(default_factory=list)
    #: computed fields usable like columns: name -> (function schema, function name, result type)
    computed: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def child(self, label: str) -> Child | None:
        return next((c for c in self.children if c.embed.label == label), None)


@dataclass
class Child:
    embed: Embed
    rel: Relationship
    node: Node


def _pairs(fk: ForeignKey, parent_is_source: bool) -> tuple[tuple[str, str], ...]:
    if parent_is_source:
        return tuple(zip(fk.columns, fk.ref_columns, strict=True))
    return tuple(zip(fk.ref_columns, fk.columns, strict=True))


_CARDINALITY = {
    "m2o": "many-to-one", "o2m": "one-to-many", "o2o": "one-to-one", "m2m": "many-to-many",
    "fn_one": "many-to-one", "fn_many": "one-to-many",
}  # fmt: skip


def _fk_detail(fk: ForeignKey) -> str:
    return f"{fk.name} using {fk.src[1]}({', '.join(fk.columns)}) and {fk.dst[1]}({', '.join(fk.ref_columns)})"


def _direct(card: Cardinality, fk: ForeignKey, parent_is_source: bool) -> Relationship:
    """`detail` names the parent side first, as PostgREST lists it."""
    src = f"{fk.src[1]}({', '.join(fk.columns)})"
    dst = f"{fk.dst[1]}({', '.join(fk.ref_columns)})"
    sides = f"{src} and {dst}" if parent_is_source else f"{dst} and {src}"
    return Relationship(card, _pairs(fk, parent_is_source), constraint=fk.name, detail=f"{fk.name} using {sides}")


def _hint_matches(hint: str, fk: ForeignKey) -> bool:
    if hint == fk.name:
        return True
    return len(fk.columns) == 1 and hint in (fk.columns[0], fk.ref_columns[0])


async def find_relationship(
    conn: Conn, cache: SchemaCache, parent: Relation, embed: Embed
) -> tuple[Relationship, Relation]:
    schema = parent.schema
    fks = await cache.foreign_keys(conn, schema)
    target_name = embed.name
    target = await cache.relation(conn, schema, target_name)
    found: list[tuple[Relationship, Relation]] = []
    if target is not None:
        for fk in fks:
            self_ref = (parent.schema, parent.name) == (target.schema, target.name)
            if self_ref:
                # a table embedding itself by name means its children (one-to-many), hinted by the foreign key
                # column only; its parent is reached by naming the foreign key column (`parent_id(*)`)
                hinted = embed.hint is None or (len(fk.columns) == 1 and embed.hint == fk.columns[0])
                if hinted and fk.src == fk.dst == (parent.schema, parent.name):
                    card: Cardinality = "o2o" if fk.unique else "o2m"
                    found.append((_direct(card, fk, False), target))
                continue
            hinted = embed.hint is None or _hint_matches(embed.hint, fk)
            if hinted and fk.src == (parent.schema, parent.name) and fk.dst == (target.schema, target.name):
                card = "o2o" if fk.unique else "m2o"
                found.append((_direct(card, fk, True), target))
            if hinted and fk.dst == (parent.schema, parent.name) and fk.src == (target.schema, target.name):
                card = "o2o" if fk.unique else "o2m"
                found.append((_direct(card, fk, False), target))
        if not found:
            found = await _many_to_many(conn, cache, parent, target, embed.hint, fks)
    else:
        # `select=fk_column(...)` or `select=constraint_name(...)`: the many-to-one along that key (to the table
        # itself rather than to views of it); from the referenced side, `constraint_name(...)` is the one-to-many
        for fk in fks:
            if fk.via_view and parent.kind not in ("v", "m"):
                continue
            if fk.dst == (parent.schema, parent.name) and fk.src != fk.dst and target_name == fk.name:
                src = await cache.relation(conn, fk.src[0], fk.src[1])
                if src is not None and (embed.hint is None or embed.hint == src.name):
                    found.append((_direct("o2o" if fk.unique else "o2m", fk, False), src))
                continue
            if fk.src != (parent.schema, parent.name):
                continue
            if target_name == fk.name or (len(fk.columns) == 1 and target_name == fk.columns[0]):
                dst = await cache.relation(conn, fk.dst[0], fk.dst[1])
                if dst is not None and (embed.hint is None or embed.hint == dst.name):
                    card = "o2o" if fk.unique else "m2o"
                    found.append((_direct(card, fk, True), dst))
        if not found:
            computed = await _computed_relationship(conn, cache, parent, embed)
            if computed is not None:
                found.append(computed)
    if not found:
        raise no_relationship(parent.name, target_name, schema, embed.hint)
    if len(found) > 1:
        raise ambiguous_relationship(
            parent.name,
            target_name,
            [
                {"cardinality": _CARDINALITY[r.cardinality], "embedding": f"{parent.name} with {t.name}",
                 "relationship": r.detail or r.constraint}
                for r, t in found
            ],
            [r.constraint for r, _ in found],
        )  # fmt: skip
    return found[0]


async def _many_to_many(
    conn: Conn, cache: SchemaCache, parent: Relation, target: Relation, hint: str | None, fks: list[ForeignKey]
) -> list[tuple[Relationship, Relation]]:
    found: list[tuple[Relationship, Relation]] = []
    by_source: dict[tuple[str, str], list[ForeignKey]] = {}
    for fk in fks:
        by_source.setdefault(fk.src, []).append(fk)
    for src, keys in by_source.items():
        if src in ((parent.schema, parent.name), (target.schema, target.name)):
            continue
        if hint is not None and hint != src[1]:
            continue
        to_parent = [k for k in keys if k.dst == (parent.schema, parent.name)]
        to_target = [k for k in keys if k.dst == (target.schema, target.name)]
        for kp in to_parent:
            for kt in to_target:
                if kp is kt:
                    continue
                junction = await cache.relation(conn, src[0], src[1])
                if junction is None:
                    continue
                found.append(
                    (
                        Relationship(
                            "m2m",
                            junction=junction,
                            junction_parent=tuple(zip(kp.columns, kp.ref_columns, strict=True)),
                            junction_target=tuple(zip(kt.columns, kt.ref_columns, strict=True)),
                            constraint=src[1],
                            detail=f"{src[1]} using {_fk_detail(kp)} and {_fk_detail(kt)}",
                        ),
                        target,
                    )
                )
    return found


async def _computed_relationship(
    conn: Conn, cache: SchemaCache, parent: Relation, embed: Embed
) -> tuple[Relationship, Relation] | None:
    for routine in await cache.routines(conn, parent.schema, embed.name):
        if len(routine.params) != 1 or routine.params[0].type not in _row_type_names(parent):
            continue
        ret = routine.return_type
        schema, _, name = ret.rpartition(".")
        target = await cache.relation(conn, schema or parent.schema, name.strip('"'))
        if target is None:
            continue
        card: Cardinality = "fn_many" if routine.returns_set and not routine.rows_one else "fn_one"
        return Relationship(card, function=(routine.schema, routine.name), constraint=routine.name), target
    return None


async def resolve(
    conn: Conn, cache: SchemaCache, relation: Relation, items: tuple[Item, ...], label: str | None = None
) -> Node:
    """`label`: how errors name this level (PostgREST aliases an embedded table as `<name>_1`)."""
    node = Node(relation)
    for item in items:
        if isinstance(item, Embed):
            rel, target = await find_relationship(conn, cache, relation, item)
            if item.spread and not rel.to_one and item.join == "inner":
                raise RestError(400, "PGRST100", "A spread relation cannot use !inner on a to-many relationship")
            child = await resolve(conn, cache, target, item.items, f"{target.name}_1")
            node.children.append(Child(item, rel, child))
            continue
        name = item.field.name
        if name == "count" and not item.field.path and item.aggregate is None and "count" not in relation.columns:
            item = SelectItem(Field("*"), item.alias, aggregate="count", agg_cast=item.cast)  # `table(count)`
        if item.star or name in relation.columns or (item.aggregate == "count" and item.field.name == "*"):
            node.items.append(item)
            continue
        fn = await computed_field(conn, cache, relation, name)
        if fn is None:
            raise undefined_column(label or relation.name, name, relation.columns)
        node.computed[name] = fn
        node.items.append(item)
    return node


def _row_type_names(relation: Relation) -> tuple[str, ...]:
    return (f"{relation.schema}.{relation.name}", relation.name, f'{relation.schema}."{relation.name}"')


async def computed_field(conn: Conn, cache: SchemaCache, relation: Relation, name: str) -> tuple[str, str, str] | None:
    for routine in await cache.routines(conn, relation.schema, name):
        takes_row = len(routine.params) == 1 and routine.params[0].type in _row_type_names(relation)
        if takes_row and routine.shape == "scalar" and not routine.returns_set:
            return routine.schema, routine.name, routine.return_type
    return None


async def computed_fields_for(
    conn: Conn, cache: SchemaCache, relation: Relation, names: set[str]
) -> dict[str, tuple[str, str, str]]:
    """Computed fields named in filters or order (not columns of the relation)."""
    found: dict[str, tuple[str, str, str]] = {}
    for name in names - set(relation.columns):
        fn = await computed_field(conn, cache, relation, name)
        if fn is not None:
            found[name] = fn
    return found
