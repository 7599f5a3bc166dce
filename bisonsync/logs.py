"""Logging setup shared by the CLI commands: secrets never reach a log line.

httpx logs request URLs at INFO (they carry `?token=`), and third-party messages can echo keys, so every record
passes a redacting filter on top of the rule that our own code never logs a secret.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    (re.compile(r"(?i)([?&](?:token|apikey|api_key|access_token)=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)(x-bisonsync-token|authorization|apikey)(['\"]?\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+"),
     r"\1\2[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "[redacted-jwt]"),
    (re.compile(r"sb_(?:secret|publishable)_[A-Za-z0-9_-]{8,}"), "[redacted-key]"),
    (re.compile(r"\b\d{1,6}\|[A-Za-z0-9]{16,}"), "[redacted-bison-key]"),
    (re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+"), "hooks.slack.com/services/[redacted]"),
)


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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactSecrets())
    root.handlers[:] = [handler]
    for noisy in ("httpx", "httpcore", "hpack", "websockets", "realtime", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
