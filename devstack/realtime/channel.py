"""One joined `realtime:<name>` channel: join, token refresh and expiry, leave, and its postgres_changes frames.

Mirrors `RealtimeWeb.RealtimeChannel` for postgres_changes: the join reply echoes the bindings with ids right
away; the database subscription is made afterwards and confirmed with a `system` "Subscribed to PostgreSQL" (or a
`system` error). The channel's claims come from the join's `access_token` (the stack's `sb_` keys stand for their
role, as Kong translates them; the connection token when it is absent or an unknown `sb_` key); `access_token`
pushes swap them and re-create the subscription; at `exp` the channel
gets a `system` error and is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

import jwt

from devstack.auth import TokenError, verify
from devstack.keys import StackKeys
from devstack.realtime.broadcast import PUBLIC, ChannelConfig, Permissions, unauthorized_read
from devstack.realtime.protocol import (
    ClientFrame,
    encode_frame,
    encode_json,
    reply_payload,
)
from devstack.realtime.subscriptions import BindingRequest, ChannelSubscription, SubscribeError

if TYPE_CHECKING:
    from devstack.realtime.socket import RealtimeConnection

log = logging.getLogger("devstack.realtime")

TOPIC_PREFIX = "realtime:"
SUBSCRIBED = "Subscribed to PostgreSQL"


def check_token(token: str, keys: StackKeys) -> dict[str, object]:
    """Verify a Realtime token: a JWT signed by the stack with `role` and `exp` (Realtime's messages on failure)."""
    try:
        claims: dict[str, object] = verify(token, keys, require=("role", "exp"))
    except TokenError as exc:
        if isinstance(exc.__cause__, jwt.ExpiredSignatureError):
            exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
            ago = int(time.time() - float(exp)) if isinstance(exp, (int, float)) else 0
            raise TokenError(f"Token has expired {max(ago, 0)} seconds ago") from exc
        raise
    if not isinstance(claims.get("role"), str) or not isinstance(claims.get("exp"), (int, float)):
        raise TokenError("Fields `role` and `exp` are required in JWT")
    return claims


class RealtimeChannel:
    def __init__(self, conn: RealtimeConnection, topic: str, join_ref: str | None) -> None:
        self.conn = conn
        self.topic = topic
        self.name = topic.removeprefix(TOPIC_PREFIX)
        self.join_ref = join_ref
        self.token = ""
        self.claims: dict[str, object] = {}
        self.bindings: list[BindingRequest] = []
        self.subscription: ChannelSubscription | None = None
        self.config = ChannelConfig()
        self.permissions: Permissions = PUBLIC
        self.presence_key = ""
        self.presence_on = False
        self.joined = False
        self.closed = False
        self._authz_task: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._set_change_frame()

    @property
    def role(self) -> str:
        return str(self.claims.get("role", ""))

    # -- frames ---------------------------------------------------------------------------------------------
    def push(self, event: str, payload_json: str, ref: str | None = None) -> None:
        self.conn.send_text(
            encode_frame(
                self.conn.vsn, topic=self.topic, event=event, payload_json=payload_json, ref=ref, join_ref=self.join_ref
            )
        )

    def reply(self, frame: ClientFrame, status: str, response: object) -> None:
        self.conn.send_text(
            encode_frame(
                self.conn.vsn,
                topic=self.topic,
                event="phx_reply",
                payload_json=reply_payload(status, response),
                ref=frame.ref,
                join_ref=frame.join_ref,
            )
        )

    def push_system(self, extension: str, status: str, message: str) -> None:
        payload = {"channel": self.name, "extension": extension, "message": message, "status": status}
        self.push("system", encode_json(payload))

    def deliver(self, ids: list[int], data_json: str) -> None:
        """ChangeSink: one `postgres_changes` frame (`ref` null, as realtime-py requires); the hot path."""
        if not self.closed:
            ids_json = ",".join(map(str, ids))
            self.conn.send_text(f'{self._change_head}{{"ids":[{ids_json}],"data":{data_json}}}{self._change_tail}')

    def _set_change_frame(self) -> None:
        """Pre-encode what every `postgres_changes` frame of this channel has around its payload."""
        marker = "\x00"
        frame = encode_frame(
            self.conn.vsn,
            topic=self.topic,
            event="postgres_changes",
            payload_json=marker,
            ref=None,
            join_ref=self.join_ref,
        )
        self._change_head, _, self._change_tail = frame.partition(marker)

    # -- client events --------------------------------------------------------------------------------------
    def join(self, frame: ClientFrame) -> bool:
        """Handle `phx_join`; replies, and returns whether the channel is joined."""
        payload = frame.payload
        requested = payload.get("access_token")
        token = self.conn.token
        if isinstance(requested, str) and requested:
            translated = self.conn.hub.keys.translate(requested)
            if not translated.startswith("sb_"):  # an unknown opaque key falls back to the connection's token
                token = translated
        try:
            claims = check_token(token, self.conn.hub.keys)
        except TokenError as exc:
            self.reply(frame, "error", {"reason": f"InvalidJWTToken: {exc}"})
            return False
        config = payload.get("config")
        raw_bindings = config.get("postgres_changes") if isinstance(config, dict) else None
        if raw_bindings is None:
            raw_bindings = []
        if not isinstance(raw_bindings, list) or not all(isinstance(b, dict) for b in raw_bindings):
            self.reply(frame, "error", {"reason": "Invalid postgres_changes configuration"})
            return False
        self.bindings = [BindingRequest.from_raw({str(k): v for k, v in b.items()}) for b in raw_bindings]
        self.config = ChannelConfig.from_raw(config)
        self.presence_key = self.config.presence_key or str(uuid.uuid4())
        self.presence_on = self.config.presence_enabled
        self._set_claims(token, claims)
        if self.config.private:  # the reply waits for the RLS check on realtime.messages
            self._authz_task = asyncio.create_task(self._join_private(frame), name=f"realtime-authz {self.topic}")
        else:
            self._complete_join(frame)
        return True

    def _complete_join(self, frame: ClientFrame) -> None:
        self.reply(frame, "ok", {"postgres_changes": [b.reply() for b in self.bindings]})
        self.joined = True
        self.conn.hub.topics.add(self)
        if self.presence_on and self.permissions.can_read("presence"):
            self.push("presence_state", self.conn.hub.topics.state_json(self))
        if self.bindings:
            self._resubscribe(start_lsn=None)

    async def _join_private(self, frame: ClientFrame) -> None:
        try:
            permissions = await self.conn.hub.authorize(self.name, self.role, encode_json(self.claims))
        except Exception as exc:
            log.warning("realtime: authorising private channel %s failed: %s", self.topic, exc)
            permissions = Permissions(read=frozenset(), write=frozenset())
        if self.closed:
            return
        if not permissions.read:
            self.reply(frame, "error", {"reason": unauthorized_read(self.name)})
            self.close()
            self.conn.forget(self)
            return
        self.permissions = permissions
        self._complete_join(frame)

    async def _reauthorize(self) -> None:
        try:
            permissions = await self.conn.hub.authorize(self.name, self.role, encode_json(self.claims))
        except Exception:
            permissions = Permissions(read=frozenset(), write=frozenset())
        if self.closed:
            return
        if not permissions.read:
            self.shutdown(unauthorized_read(self.name))
            return
        self.permissions = permissions

    # -- broadcast and presence -----------------------------------------------------------------------------
    def on_broadcast(self, frame: ClientFrame) -> None:
        """A client `broadcast` push: relay it to the topic (and back with `self`), reply when `ack` is asked."""
        if not self.joined:
            return
        if not self.permissions.can_write("broadcast"):
            return  # Realtime drops a private channel's broadcast without write permission
        payload = dict(frame.payload)
        payload.setdefault("type", "broadcast")
        self.conn.hub.topics.broadcast(self, self.conn.hub.topics.key_of(self), encode_json(payload))
        if self.config.broadcast_ack:
            self.reply(frame, "ok", {})

    def on_presence(self, frame: ClientFrame) -> None:
        """A client `presence` push: `track` (replaces this channel's presence) or `untrack`."""
        if not self.joined:
            return
        event = frame.payload.get("event")
        if not self.permissions.can_write("presence"):
            self.reply(frame, "error", {"reason": "Unauthorized: You do not have permissions to track presence"})
            return
        if event == "track":
            data = frame.payload.get("payload")
            if not self.presence_on:  # tracking turns presence on for the channel
                self.presence_on = True
                if self.permissions.can_read("presence"):
                    self.push("presence_state", self.conn.hub.topics.state_json(self))
            self.conn.hub.topics.track(self, dict(data) if isinstance(data, dict) else {})
        elif event == "untrack":
            self.conn.hub.topics.untrack(self)
        else:
            self.reply(frame, "error", {"reason": f"unknown presence event: {event}"})
            return
        self.reply(frame, "ok", {})

    def refresh_token(self, frame: ClientFrame) -> None:
        """`access_token`: no reply; a new valid JWT re-creates the subscription with its claims."""
        raw = frame.payload.get("access_token")
        if not isinstance(raw, str) or not raw:
            return
        # An opaque key pushed as the token stands for its role, as Kong translates it: the publishable key
        # drops the channel to anon exactly like the anon JWT does (it must not keep a user's privileges).
        token = self.conn.hub.keys.translate(raw)
        if token == self.token:
            return
        try:
            claims = check_token(token, self.conn.hub.keys)
        except TokenError as exc:
            self.shutdown(str(exc))
            return
        self._set_claims(token, claims)
        if self.config.private and self.joined:
            if self._authz_task is not None:
                self._authz_task.cancel()
            self._authz_task = asyncio.create_task(self._reauthorize(), name=f"realtime-reauthz {self.topic}")
        if self.bindings:
            start = self.subscription.start_lsn if self.subscription is not None else None
            self._resubscribe(start_lsn=start)

    def leave(self, frame: ClientFrame) -> None:
        self.reply(frame, "ok", {})
        self.push("phx_close", "{}", ref=self.join_ref)
        self.close()

    def shutdown(self, message: str) -> None:
        """Server-side stop with a reason: a `system` error, then `phx_close` (Phoenix's normal channel exit)."""
        if self.closed:
            return
        self.push_system("system", "error", message)
        self.push("phx_close", "{}", ref=self.join_ref)
        self.close()
        self.conn.forget(self)

    def close(self) -> None:
        """Drop the subscription and timers (no frames)."""
        self.closed = True
        self.joined = False
        self.conn.hub.topics.remove(self)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._authz_task is not None and self._authz_task is not asyncio.current_task():
            self._authz_task.cancel()
        self._authz_task = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.conn.hub.registry.remove(self.subscription)
        self.subscription = None

    # -- internals ------------------------------------------------------------------------------------------
    def _set_claims(self, token: str, claims: dict[str, object]) -> None:
        self.token, self.claims = token, claims
        if self._expiry is not None:
            self._expiry.cancel()
        exp = claims.get("exp")
        if isinstance(exp, (int, float)):
            delay = max(float(exp) - time.time(), 0.0) + 0.05
            self._expiry = asyncio.get_running_loop().call_later(delay, self._expired)

    def _expired(self) -> None:
        self._expiry = None
        try:
            check_token(self.token, self.conn.hub.keys)
        except TokenError as exc:
            self.shutdown(str(exc))
            return
        self._expiry = asyncio.get_running_loop().call_later(1.0, self._expired)  # clock skew: look again

    def _resubscribe(self, *, start_lsn: int | None) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._subscribe(start_lsn), name=f"realtime-subscribe {self.topic}")

    async def _subscribe(self, start_lsn: int | None) -> None:
        hub = self.conn.hub
        try:
            sub = await hub.subscribe(self, self.bindings, self.role, encode_json(self.claims), start_lsn)
        except SubscribeError as exc:
            if not self.closed:
                hub.registry.remove(self.subscription)
                self.subscription = None
                self.push_system("postgres_changes", "error", str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("realtime subscription for %s failed", self.topic)
            if not self.closed:
                self.push_system("postgres_changes", "error", "Realtime was unable to connect to the database")
            return
        if self.closed:
            return
        hub.registry.replace(self.subscription, sub)
        self.subscription = sub
        self.push_system("postgres_changes", "ok", SUBSCRIBED)
