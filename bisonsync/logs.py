"""Logging setup shared by the CLI commands: secrets never reach a log line, and no value forges one.

httpx logs request URLs at INFO (they carry `?token=`), and third-party messages can echo keys, so every record
passes a redacting filter on top of the rule that our own code never logs a secret.

Every logged value may come from a sender (a request path with `%0a`, an error body), so the formatter escapes
control characters in the message (a line feed is written as a backslash and `n`): one record is one line. The
traceback of an exception keeps its line breaks, each of its lines indented, so nothing in it starts a line
that looks like a record.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_PATTERNS = (
    (re.compile(r"(?i)([?&](?:token|apikey|api_key|access_token)=)[^&\s\"']+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)(x-bisonsync-token|authorization|apikey)(['\"]?\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+"),
        r"\1\2[redacted]",
    ),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "[redacted-jwt]"),
    (re.compile(r"sb_(?:secret|publishable)_[A-Za-z0-9_-]{8,}"), "[redacted-key]"),
    (re.compile(r"\b\d{1,6}\|[A-Za-z0-9]{16,}"), "[redacted-bison-key]"),
    (re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+"), "hooks.slack.com/services/[redacted]"),
    # a Slack webhook path echoed without its host (plain, JSON-escaped or percent-encoded slashes)
    (re.compile(r"(?i)(T[A-Z0-9]{6,})(/|\\/|%2F)(B[A-Z0-9]{6,})(/|\\/|%2F)[A-Za-z0-9]{12,}"), "[redacted-slack-path]"),
)


# C0 and C1 controls, DEL, and the Unicode line/paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    ch = match.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def escape_control(text: str) -> str:
    """`text` on one line: control characters written as escapes (`\\n`, `\\x1b`, `\\u2028`)."""
    return _CONTROL.sub(_escape_one, text)


class SafeFormatter(logging.Formatter):
    """Escapes control characters in every message; indents continuation lines of tracebacks and stacks."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return _indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indent(super().formatStack(stack_info))


def _indent(text: str) -> str:
    """Every line of a traceback or stack (they follow the message on lines of their own) indented."""
    return "\n".join("    " + escape_control(line) for line in text.split("\n"))


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "info") -> None:
    """Root handler with the redacting filter; chatty libraries held at WARNING."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactSecrets())
    root.handlers[:] = [handler]
    for noisy in ("httpx", "httpcore", "hpack", "websockets", "realtime", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
