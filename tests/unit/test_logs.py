"""Secrets never reach a log line, whoever logs them."""

from __future__ import annotations

import logging

import pytest

from bisonsync.logs import RedactSecrets, redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('HTTP Request: POST http://127.0.0.1:8000/webhooks/bison?token=s3cr3t-value "HTTP/1.1 200"', "s3cr3t-value"),
        ("GET /x?a=1&apikey=abcdef123456&b=2", "abcdef123456"),
        ("headers {'authorization': 'Bearer abc.def.ghi'}", "abc.def.ghi"),
        ("X-Bisonsync-Token: tok_999", "tok_999"),
        ("key " + "eyJ" + "a" * 10 + ".eyJ" + "b" * 10 + "." + "c" * 10, "eyJ" + "a" * 10),
        ("using sb_secret_" + "Q" * 20, "Q" * 20),
        ("bison key 42|" + "Z" * 40, "Z" * 40),
    ],
)
def test_redact_removes_secret(line: str, secret: str) -> None:
    assert secret not in redact(line)


def test_filter_rewrites_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("bisonsync.test.redact")
    handler_filter = RedactSecrets()
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="bisonsync.test.redact"):
            logger.info("calling %s", "http://h/webhooks/bison?token=hunter2")
    finally:
        logger.removeFilter(handler_filter)
    assert "hunter2" not in caplog.text and "[redacted]" in caplog.text
