"""Slack incoming webhooks: Block Kit messages in the predecessor's style (spec §5.8) and one careful POST.

Slack webhook URLs are secrets: they are never logged, never stored, never put into an error. Logs name a
destination by `url_label(url)` (a short hash: no part of the URL) and by the env var it came from. Whatever Slack
or a proxy answers may echo the URL or its path (percent-encoded, JSON-escaped, one segment at a time), so every
error text passes `scrub_url`, which removes each part of the URL wherever it appears. What is stored in
`alert_log.last_error` (readable by the workspace's members) is only the class of the failure (`PostResult.kind`:
"HTTP 404", "timeout", ...), never a response body or a transport error's text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from bisonsync.alerts.models import CONDITION_LABELS, Alert
from bisonsync.retry import RetryPolicy, parse_retry_after

log = logging.getLogger("bisonsync.alerts.slack")

SEVERITY_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
#: Slack limits: 3000 characters per section text, 10 fields per section, 50 blocks per message
SECTION_MAX = 2900
FIELDS_MAX = 10
BLOCKS_MAX = 50
#: one message within one round: 3 tries, backoff from 1 s, Retry-After honoured up to 30 s
SLACK_RETRY = RetryPolicy(max_attempts=3, backoff_base_s=1.0, backoff_max_s=8.0, retry_after_cap_s=30.0)


def url_label(url: str) -> str:
    """What may be logged about a Slack URL: a hash that tells destinations apart and reveals none of it."""
    return "#" + hashlib.sha256(url.encode()).hexdigest()[:8] if url else "(none)"


#: path segments that are the same in every Slack webhook URL (not secret, and too common to blank out)
_PUBLIC_SEGMENTS = frozenset({"services", "hooks", "workflows", "triggers"})


def _secret_parts(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url] if url else []
    pieces = {url, url.split("://", 1)[-1], parts.netloc, parts.path, parts.path.lstrip("/"), parts.query}
    pieces.update(seg for seg in parts.path.split("/") if len(seg) >= 4 and seg.lower() not in _PUBLIC_SEGMENTS)
    pieces.update(v for _, v in parse_qsl(parts.query) if len(v) >= 4)
    if parts.password:
        pieces.add(parts.password)
    variants = set()
    for piece in pieces:
        if not piece:
            continue
        variants.update({piece, quote(piece, safe=""), quote(piece), piece.replace("/", "\\/")})
    return sorted(variants, key=len, reverse=True)


def scrub_url(text: str, url: str) -> str:
    """`text` with the URL, its path, each of its path segments and query values (raw, percent-encoded or
    JSON-escaped) replaced by `[redacted]`, case-insensitively."""
    if not url or not text:
        return text
    lowered = text.lower()
    for piece in _secret_parts(url):
        if piece.lower() in lowered:
            text = _replace_ci(text, piece, "[redacted]")
            lowered = text.lower()
    return text


def _replace_ci(text: str, old: str, new: str) -> str:
    out, low, needle, i = [], text.lower(), old.lower(), 0
    while (j := low.find(needle, i)) >= 0:
        out.append(text[i:j] + new)
        i = j + len(old)
    out.append(text[i:])
    return "".join(out)


def escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, object]:
    if len(text) > SECTION_MAX:
        text = text[: SECTION_MAX - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _label(condition: str, n: int) -> str:
    singular, plural = CONDITION_LABELS.get(condition, (condition.replace("_", " "), condition.replace("_", " ")))
    return singular if n == 1 else plural


def render_alert(alert: Alert) -> dict[str, object]:
    """One alert: fallback text, a headline section, a divider, the fields, a context line."""
    emoji = SEVERITY_EMOJI.get(alert.severity, ":bell:")
    blocks: list[dict[str, object]] = [_section(f"{emoji} *{escape(alert.title)}*"), {"type": "divider"}]
    items = list(alert.fields.items())
    for i in range(0, len(items), FIELDS_MAX):
        chunk = items[i : i + FIELDS_MAX]
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{escape(k)}:*\n{escape(v)[:1900]}"} for k, v in chunk],
            }
        )
    context = f"{alert.condition} · {alert.severity}"
    if alert.occurred_at is not None:
        context += f" · {alert.occurred_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(context)}]})
    return {"text": f"{emoji} {alert.title}", "blocks": blocks}


def _line(alert: Alert) -> str:
    subject = alert.subject or alert.title
    detail = ""
    if alert.workspace_name and alert.subject != alert.workspace_name:
        detail = f" ({alert.workspace_name})"
    extra = alert.fields.get("Status") or alert.fields.get("Silent for") or alert.fields.get("Drop") or ""
    return f"• {escape(subject)}{escape(detail)}" + (f" — {escape(extra)}" if extra else "")


def render_batch(alerts: Sequence[Alert], list_max: int = 20) -> dict[str, object]:
    """Many alerts in one message: a summary headline, then one section per condition listing up to `list_max`
    subjects and "…and N more"."""
    if len(alerts) == 1:
        return render_alert(alerts[0])
    groups: dict[str, list[Alert]] = {}
    for a in sorted(alerts, key=lambda a: (SEVERITY_ORDER.get(a.severity, 9), a.condition, a.subject or "")):
        groups.setdefault(a.condition, []).append(a)
    worst = min((SEVERITY_ORDER.get(a.severity, 9) for a in alerts), default=2)
    emoji = SEVERITY_EMOJI[next(s for s, o in SEVERITY_ORDER.items() if o == min(worst, 2))]
    summary = ", ".join(f"{len(g)} {_label(c, len(g))}" for c, g in groups.items())
    text = f"{emoji} {len(alerts)} alerts: {summary}"
    blocks: list[dict[str, object]] = [_section(f"{emoji} *{escape(f'{len(alerts)} alerts')}*\n{escape(summary)}")]
    for condition, group in groups.items():
        if len(blocks) >= BLOCKS_MAX - 3:
            break
        lines = [_line(a) for a in group[:list_max]]
        if len(group) > list_max:
            lines.append(f"_…and {len(group) - list_max} more_")
        heading = f"*{escape(_label(condition, len(group)).capitalize())} ({len(group)})*"
        blocks.append({"type": "divider"})
        blocks.append(_section(heading + "\n" + "\n".join(lines)))
    workspaces = sorted({a.workspace_name for a in alerts if a.workspace_name})
    if workspaces:
        shown = ", ".join(workspaces[:15]) + (f" and {len(workspaces) - 15} more" if len(workspaces) > 15 else "")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(f"Workspaces: {shown}")}]})
    return {"text": text, "blocks": blocks}


def text_only(message: dict[str, object]) -> dict[str, object]:
    """The same message without blocks (Slack refused the blocks)."""
    return {"text": message.get("text", "bisonsync alert")}


@dataclass(frozen=True, slots=True)
class PostResult:
    ok: bool
    #: HTTP status, None when no answer came
    status: int | None = None
    #: what went wrong, for the log: never containing any part of the URL (`scrub_url`)
    error: str | None = None
    #: seconds Slack asked us to wait (429)
    retry_after: float | None = None
    #: retrying will not help until someone fixes the configuration (404 no_service, 410 channel archived, ...)
    permanent: bool = False
    #: the request count this took
    tries: int = 1
    #: the class of the failure, all that is stored where members read it ("HTTP 404", "timeout", ...)
    kind: str | None = None


async def post_once(http: httpx.AsyncClient, url: str, message: dict[str, object], timeout_s: float) -> PostResult:
    try:
        resp = await http.post(url, json=message, timeout=timeout_s)
    except httpx.TimeoutException as exc:
        return PostResult(False, None, f"timeout ({type(exc).__name__})", kind="timeout")
    except httpx.HTTPError as exc:
        name = type(exc).__name__
        return PostResult(False, None, f"{name}: {scrub_url(str(exc), url)[:200]}", kind=f"transport error ({name})")
    except Exception as exc:  # e.g. httpx.InvalidURL: a malformed URL; its text may quote the secret, so omit it
        name = type(exc).__name__
        return PostResult(False, None, f"{name} (check the Slack URL)", permanent=True, kind=f"invalid URL ({name})")
    # scrub the whole body before cutting it: a cut could leave a part of a secret segment unrecognised
    body = scrub_url(resp.text[:4000], url)[:200].strip()
    if resp.status_code == 200:
        return PostResult(True, 200)
    kind = f"HTTP {resp.status_code}"
    error = scrub_url(f"{kind}: {body or resp.reason_phrase}", url)
    if resp.status_code == 429:
        return PostResult(False, 429, error, retry_after=parse_retry_after(resp.headers.get("Retry-After")), kind=kind)
    if resp.status_code >= 500:
        return PostResult(False, resp.status_code, error, kind=kind)
    return PostResult(False, resp.status_code, error, permanent=True, kind=kind)


async def post_message(
    http: httpx.AsyncClient,
    url: str,
    message: dict[str, object],
    *,
    policy: RetryPolicy = SLACK_RETRY,
    timeout_s: float = 10.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> PostResult:
    """POST with up to `policy.max_attempts` tries: 429 waits Retry-After (up to the policy's cap; longer is left
    to a later round rather than hold the worker), 5xx/timeouts/connection errors back off with jitter, other 4xx
    stop (a 400 about the blocks is retried once as text only)."""
    tries = 0
    result = PostResult(False, None, "not sent", kind="not sent")
    stripped = False
    attempts = max(1, policy.max_attempts)
    while tries < attempts:
        tries += 1
        result = await post_once(http, url, message, timeout_s)
        if result.ok:
            break
        if result.status == 400 and not stripped and "blocks" in message:
            log.warning("slack %s refused the blocks (%s); retrying as text", url_label(url), result.error)
            message, stripped = text_only(message), True
            continue
        if result.permanent:
            break
        wait = policy.wait(tries, result.retry_after)
        if wait is None:
            break
        log.warning("slack %s: %s; retry %d/%d in %.1fs", url_label(url), result.error, tries, attempts - 1, wait)
        await sleep(wait)
    return PostResult(result.ok, result.status, result.error, result.retry_after, result.permanent, tries, result.kind)
