"""`BisonClient`: the Email Bison REST API over one pooled `httpx.AsyncClient`, with typed results and errors.

Workspaces and keys. `client.workspace(team_id)` opens a scoped session:
- with a workspace key registered for that team, the session just uses it: no switch, no lock, so sessions for
  different workspaces (and calls within one) run in parallel;
- otherwise the super-admin key is used: the session takes that token's lock, switches the server-side context
  to the team, runs its calls, and releases the lock. Workspaces behind one super-admin key are therefore
  serialized and never mix (spec §6.13), while calls inside one session may still run concurrently.

A workspace key Email Bison refuses (401/403: revoked, expired) is dropped from the client and its session carries on
with the super-admin key (switching, and holding that key's lock until the session ends); listeners registered with
`on_key_refused` are told (bisonsync.keys counts it and marks a stored key failed).

Calls made on the client itself use its default key (the super-admin key, else the only workspace key). With a
super-admin key they act on whatever workspace the token is switched to; each takes the token lock so it never
lands in the middle of someone else's session. Inside a session, use the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import httpx
import msgspec

from bisonsync.bison.endpoints import Endpoints, api_url
from bisonsync.bison.errors import (
    BisonAuthError,
    BisonConnectionError,
    BisonError,
    BisonNotFound,
    BisonProtocolError,
    BisonRateLimited,
    BisonRequestError,
    BisonServerError,
    BisonTimeout,
)
from bisonsync.bison.keys import ApiKey, KeyKind
from bisonsync.retry import RetryPolicy
from bisonsync.settings import DEFAULT_MAX_PAGES

log = logging.getLogger("bisonsync.bison")

DEFAULT_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=30.0)
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0)

_encode = msgspec.json.Encoder().encode


def _server_message(resp: httpx.Response) -> str:
    """Laravel's `{"message": ...}` if there is one, shortened; never headers."""
    try:
        body = msgspec.json.decode(resp.content)
    except msgspec.DecodeError:
        return resp.reason_phrase or "error"
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:200] if message else (resp.reason_phrase or "error")


def _error_for(resp: httpx.Response, method: str, path: str) -> BisonError:
    status = resp.status_code
    text = f"HTTP {status}: {_server_message(resp)}"
    kind: type[BisonError]
    if status in (401, 403):
        kind = BisonAuthError
    elif status == 404:
        kind = BisonNotFound
    elif status == 429:
        kind = BisonRateLimited
    elif status >= 500:
        kind = BisonServerError
    elif status >= 400:
        kind = BisonRequestError
    else:
        kind = BisonProtocolError  # a redirect: the base URL points at something that is not the API
    return kind(text, status_code=status, method=method, path=path)


class WorkspaceSession(Endpoints):
    """API calls scoped to one workspace; valid only inside its `client.workspace(team_id)` block."""

    def __init__(self, client: BisonClient, key: ApiKey, team_id: int, lock: asyncio.Lock | None) -> None:
        self._owner = client
        self._key = key
        self.team_id = team_id
        self._lock = lock
        self._open = True
        #: set when a refused workspace key made this session switch to the super-admin key (holds its lock)
        self._fell_back = False
        self._transition = asyncio.Lock()

    @property
    def key_kind(self) -> KeyKind:
        return self._key.kind

    @property
    def parallel_safe(self) -> bool:
        """True when other workspaces' sessions can run at the same time as this one."""
        return self._key.kind is KeyKind.WORKSPACE

    def __repr__(self) -> str:
        return f"WorkspaceSession(team_id={self.team_id}, key={self._key.label}, open={self._open})"

    async def _request(
        self,
        method: str,
        target: str | httpx.URL,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        idempotent: bool = True,
        scoped: bool = True,
    ) -> httpx.Response:
        if not self._open:
            raise RuntimeError(f"workspace session for team {self.team_id} used after its `async with` block ended")
        key = self._key
        if key.kind is KeyKind.WORKSPACE:
            try:
                return await self._owner._send(key, method, target, params=params, json=json, idempotent=idempotent)
            except BisonAuthError as exc:
                if not await self._fall_back(key, exc):
                    raise
        return await self._owner._send(self._key, method, target, params=params, json=json, idempotent=idempotent)

    async def _fall_back(self, refused: ApiKey, exc: BisonAuthError) -> bool:
        """The workspace key was refused (401/403: revoked, expired, wrong): drop it from the client and carry on
        with the super-admin key, switched to this team, holding its lock until the session ends. False when there
        is no super-admin key to fall back to."""
        async with self._transition:
            if self._key is refused:
                owner = self._owner
                owner._workspace_key_refused(self.team_id, refused, exc)
                if owner._super_key is None:
                    return False
                lock = owner._lock_for(owner._super_key)
                await lock.acquire()
                try:
                    await owner._switch(owner._super_key, self.team_id)
                except BaseException:
                    lock.release()
                    raise
                self._key, self._lock, self._fell_back = owner._super_key, lock, True
            return self._key.kind is KeyKind.SUPER_ADMIN


#: called with (team_id, refused workspace key, the error) when a session falls back to the super-admin key
KeyRefusedListener = Callable[[int, ApiKey, BisonError], None]

#: the open super-admin sessions of this context (so calls nested inside one neither deadlock nor switch)
_SESSIONS: contextvars.ContextVar[tuple[WorkspaceSession, ...]] = contextvars.ContextVar("bison_sessions", default=())


class BisonClient(Endpoints):
    """Email Bison REST client. One per process (it owns the connection pool); use as an async context manager."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        workspace_keys: Mapping[int, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        switch_settle_s: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """`api_key` is the super-admin (instance) key; `workspace_keys` maps team ids to workspace-scoped keys.

        Pass `http_client` to share a pool you own, or `transport` (e.g. `httpx.ASGITransport`) to have the client
        build its own pool on it. `sleep`, `clock` and `rng` exist for tests.
        """
        if http_client is not None and transport is not None:
            raise ValueError("pass either http_client or transport, not both")
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self._owner = self
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._super_key = ApiKey(api_key, KeyKind.SUPER_ADMIN) if api_key is not None else None
        self._workspace_keys: dict[int, ApiKey] = {}
        for team_id, token in (workspace_keys or {}).items():
            self.add_workspace_key(team_id, token)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=transport, limits=limits, timeout=timeout, follow_redirects=False
        )
        self.retry = retry or RetryPolicy()
        self.max_pages = max_pages
        self.switch_settle_s = switch_settle_s
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._locks: dict[str, asyncio.Lock] = {}
        self._key_refused_listeners: list[KeyRefusedListener] = []

    def __repr__(self) -> str:
        keys = [k.label for k in ([self._super_key] if self._super_key else [])]
        return f"BisonClient({str(self.base_url)!r}, keys={keys}, workspace_keys={len(self._workspace_keys)})"

    async def __aenter__(self) -> BisonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- keys -------------------------------------------------------------------------------------------------

    def add_workspace_key(self, team_id: int, token: str) -> None:
        """Register (or replace) the workspace-scoped key of `team_id`."""
        self._workspace_keys[int(team_id)] = ApiKey(token, KeyKind.WORKSPACE, int(team_id))

    def remove_workspace_key(self, team_id: int) -> ApiKey | None:
        """Forget the workspace key of `team_id` (its sessions then use the super-admin key)."""
        return self._workspace_keys.pop(int(team_id), None)

    def on_key_refused(self, listener: KeyRefusedListener) -> None:
        """Call `listener(team_id, key, error)` when a workspace key is refused and its session falls back."""
        self._key_refused_listeners.append(listener)

    def _workspace_key_refused(self, team_id: int, key: ApiKey, exc: BisonError) -> None:
        if self._workspace_keys.get(team_id) is key:
            del self._workspace_keys[team_id]
        fallback = "falling back to the super-admin key" if self._super_key else "no super-admin key to fall back to"
        log.warning("workspace %d: workspace key %s refused (%s); %s", team_id, key.label, exc.message, fallback)
        for listener in self._key_refused_listeners:
            try:
                listener(team_id, key, exc)
            except Exception:
                log.exception("key-refused listener failed")

    def key_for(self, team_id: int) -> ApiKey:
        """The key `workspace(team_id)` uses: the team's own key if registered, else the super-admin key."""
        key = self._workspace_keys.get(int(team_id), self._super_key)
        if key is None:
            raise ValueError(f"no Email Bison key for workspace {team_id}: no workspace key and no super-admin key")
        return key

    def parallel_safe(self, team_id: int) -> bool:
        """True when a session for `team_id` does not serialize behind a shared super-admin key."""
        return self.key_for(team_id).kind is KeyKind.WORKSPACE

    def _default_key(self, scoped: bool = True) -> ApiKey:
        """The super-admin key; else a workspace key, if there is only one or the call is not workspace-scoped."""
        if self._super_key is not None:
            return self._super_key
        if len(self._workspace_keys) == 1 or (self._workspace_keys and not scoped):
            return next(iter(self._workspace_keys.values()))
        raise ValueError("no default Email Bison key: pass a super-admin key or use client.workspace(team_id)")

    def _lock_for(self, key: ApiKey) -> asyncio.Lock:
        lock = self._locks.get(key.token)
        if lock is None:
            lock = self._locks[key.token] = asyncio.Lock()
        return lock

    @staticmethod
    def _session_holding(lock: asyncio.Lock) -> WorkspaceSession | None:
        """The open session of this context that holds `lock`, if any."""
        for session in _SESSIONS.get():
            if session._lock is lock and session._open:
                return session
        return None

    # -- scoping ----------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def workspace(self, team_id: int) -> AsyncIterator[WorkspaceSession]:
        """A session whose calls act on workspace `team_id` (see the module docstring for the locking rules)."""
        team_id = int(team_id)
        key = self.key_for(team_id)
        if key.kind is KeyKind.WORKSPACE:
            session = WorkspaceSession(self, key, team_id, None)
            try:
                yield session
            finally:
                session._open = False
                if session._fell_back and session._lock is not None:
                    session._lock.release()
            return
        lock = self._lock_for(key)
        outer = self._session_holding(lock)
        if outer is not None:
            if outer.team_id != team_id:
                raise RuntimeError(
                    f"workspace({team_id}) inside workspace({outer.team_id}) on one super-admin key would switch "
                    "under the outer session; open the sessions one after the other"
                )
            yield outer
            return
        async with lock:
            session = WorkspaceSession(self, key, team_id, lock)
            reset = _SESSIONS.set((*_SESSIONS.get(), session))
            try:
                await self._switch(key, team_id)
                yield session
            finally:
                session._open = False
                _SESSIONS.reset(reset)

    async def switch_workspace(self, team_id: int) -> None:
        """Low level: switch the super-admin token's server-side workspace. Prefer `workspace(team_id)`."""
        key = self._default_key()
        if key.kind is KeyKind.WORKSPACE:
            await self._switch(key, int(team_id))  # the server refuses (403); surface that as BisonAuthError
            return
        lock = self._lock_for(key)
        if self._session_holding(lock) is not None:
            raise RuntimeError("switch_workspace inside a workspace session would switch under that session")
        async with lock:
            await self._switch(key, int(team_id))

    async def _switch(self, key: ApiKey, team_id: int) -> None:
        path = "/api/workspaces/v1.1/switch-workspace"
        resp = await self._send(key, "POST", path, json={"team_id": team_id}, idempotent=True)
        # Real instances answer only {"data": {"name": ...}} (nothing to check it against: names are not unique
        # and may carry spaces); an answer that also carries an id must carry ours.
        try:
            data = msgspec.json.decode(resp.content).get("data")
        except (msgspec.DecodeError, AttributeError):
            data = None
        got = data.get("id", team_id) if isinstance(data, dict) else team_id
        if isinstance(got, str) and got.strip().isdigit():
            got = int(got)
        if got != team_id:
            raise BisonProtocolError(
                f"asked to switch to workspace {team_id}, the server says {got}", method="POST", path=path
            )
        log.debug("switched %s to workspace %d", key.label, team_id)
        if self.switch_settle_s > 0:
            await self._sleep(self.switch_settle_s)

    # -- Endpoints plumbing ------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        target: str | httpx.URL,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        idempotent: bool = True,
        scoped: bool = True,
    ) -> httpx.Response:
        key = self._default_key(scoped)
        if scoped and key.kind is KeyKind.SUPER_ADMIN:
            lock = self._lock_for(key)
            if self._session_holding(lock) is None:
                async with lock:
                    return await self._send(key, method, target, params=params, json=json, idempotent=idempotent)
        return await self._send(key, method, target, params=params, json=json, idempotent=idempotent)

    # -- the one place requests are sent ----------------------------------------------------------------------

    async def _send(
        self,
        key: ApiKey,
        method: str,
        target: str | httpx.URL,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send with retries (see `bisonsync.retry`); return a 2xx response or raise a `BisonError`."""
        url = api_url(self.base_url, target, params)
        path = url.path
        headers = {"Authorization": f"Bearer {key.token}", "Accept": "application/json"}
        content: bytes | None = None
        if json is not None:
            content = _encode(json)
            headers["Content-Type"] = "application/json"
        policy = self.retry
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            cause: BaseException | None = None
            wait: float | None = None  # None: do not retry
            try:
                async with asyncio.timeout(policy.attempt_timeout_s):
                    resp = await self._http.request(method, url, content=content, headers=headers)
            except (TimeoutError, httpx.TimeoutException) as exc:
                cause = exc
                error: BisonError = BisonTimeout(
                    f"no complete answer within {policy.attempt_timeout_s:g}s ({type(exc).__name__})",
                    method=method,
                    path=path,
                )
                never_sent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                if idempotent or never_sent:
                    wait = policy.backoff(attempt, self._rng)
            except httpx.TransportError as exc:
                cause = exc
                error = BisonConnectionError(f"{type(exc).__name__}: {exc}", method=method, path=path)
                if idempotent or isinstance(exc, httpx.ConnectError):
                    wait = policy.backoff(attempt, self._rng)
            except httpx.HTTPError as exc:
                raise BisonError(f"{type(exc).__name__}: {exc}", method=method, path=path) from exc
            else:
                if resp.is_success:
                    return resp
                error = _error_for(resp, method, path)
                if isinstance(error, BisonRateLimited):
                    error.retry_after = policy.retry_after(resp.headers.get("Retry-After"))
                    wait = error.retry_after if error.retry_after is not None else policy.backoff(attempt, self._rng)
                elif isinstance(error, BisonServerError) and idempotent:
                    wait = policy.backoff(attempt, self._rng)
            error.attempts = attempt
            if wait is None or attempt >= policy.max_attempts or self._clock() - started + wait > policy.max_elapsed_s:
                raise error from cause
            log.warning(
                "email bison %s %s failed (%s), retry %d/%d in %.2fs [key %s]",
                method,
                path,
                error.message,
                attempt,
                policy.max_attempts - 1,
                wait,
                key.label,
            )
            await self._sleep(wait)
