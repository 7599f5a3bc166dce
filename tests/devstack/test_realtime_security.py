"""Realtime findings of the red-team pass (issue 12.7), through the real realtime-py client.

- A DELETE on a table with RLS is delivered as Supabase Realtime delivers it: key-only `old_record`, and binding
  filters are not evaluated on the old values, so a non-member cannot probe another tenant's deleted row.
- Pushing the publishable key (`sb_publishable_…`) as the channel's access token drops it to anon, like the anon
  JWT does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from devstack.keys import DEFAULT_PUBLISHABLE_KEY
from tests.conftest import StackHandle
from tests.devstack.test_realtime import Listener, clients, guarded, items, summary, tables  # noqa: F401

pytestmark = pytest.mark.timeout(120)


async def test_realtime_delete_filters_cannot_probe_old_values(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    guarded: tuple[str, str],
    items: str,
) -> None:
    docs, members = guarded
    await db.execute(f"alter table public.{docs} replica identity full")  # old values are in the WAL
    alice, mallory = str(uuid.uuid4()), str(uuid.uuid4())
    await db.execute(f"insert into public.{members} values (1, $1)", uuid.UUID(alice))
    await db.execute(f"insert into public.{docs} values (7, 1, 'jane.doe@example.com', 'pii')")
    client = await clients(token=devstack.user_token(mallory))
    right = (
        await Listener(client, "probe-right")
        .on(docs, "DELETE", "title=eq.jane.doe@example.com")
        .on(items, "INSERT", "id=eq.99", tag="sentinel")
        .subscribe()
    )
    wrong = (
        await Listener(client, "probe-wrong")
        .on(docs, "DELETE", "title=eq.john@example.com")
        .on(items, "INSERT", "id=eq.99", tag="sentinel")
        .subscribe()
    )
    await db.execute(f"delete from public.{docs} where id = 7")
    await db.execute(f"insert into public.{items} (id) values (99)")
    for listener in (right, wrong):
        await listener.wait_record("id", 99)
    # Whatever the guess, the same key-only frame: the delivery says nothing about the old values.
    assert summary([e for e in right.events if e[0] != "sentinel"]) == [("DELETE", None, {"id": 7})]
    assert summary([e for e in wrong.events if e[0] != "sentinel"]) == [("DELETE", None, {"id": 7})]


async def test_realtime_delete_filters_still_apply_without_rls(
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    items: str,
) -> None:
    """Without RLS the old row is public: DELETE filters keep working on a FULL replica identity."""
    await db.execute(f"alter table public.{items} replica identity full")
    await db.execute(f"insert into public.{items} (id, title) values (1, 'a'), (2, 'b'), (99, 'sentinel')")
    listener = await Listener(await clients(), "no-rls").on(items, "DELETE", "title=eq.b").subscribe()
    await db.execute(f"delete from public.{items} where id in (1, 2)")
    await db.execute(f"delete from public.{items} where id = 99")
    await listener.wait_events(1)
    await db.execute(f"insert into public.{items} (id, title) values (5, 'b')")
    await db.execute(f"delete from public.{items} where id = 5")
    await listener.wait_events(2)
    assert [d["old_record"]["id"] for _, d in listener.events] == [2, 5]


async def test_realtime_publishable_key_as_access_token_drops_to_anon(
    devstack: StackHandle,
    clients: Callable[..., Any],
    db: asyncpg.Connection,
    guarded: tuple[str, str],
    items: str,
) -> None:
    docs, members = guarded
    alice = str(uuid.uuid4())
    await db.execute(f"insert into public.{members} values (1, $1)", uuid.UUID(alice))
    client = await clients(token=devstack.user_token(alice))
    listener = await Listener(client, "downgrade").on(docs, "INSERT").on(items, "INSERT", tag="sentinel").subscribe()
    await db.execute(f"insert into public.{docs} values (1, 1, 'seen as alice', null)")
    await listener.wait_record("title", "seen as alice")
    await client.realtime.set_auth(DEFAULT_PUBLISHABLE_KEY)
    await listener.wait_for(lambda: listener.subscribed_count >= 2, "re-subscription as anon")
    await db.execute(f"insert into public.{docs} values (2, 1, 'hidden from anon', null)")
    await db.execute(f"insert into public.{items} (id) values (1)")
    await listener.wait_record("id", 1)
    assert [d["record"]["title"] for tag, d in listener.events if tag != "sentinel"] == ["seen as alice"]
