"""One record, one line: the formatter of `bisonsync.logs.setup_logging` escapes control characters in every
logged value and indents the continuation lines of tracebacks (issue 12 item 7, log forging)."""

from __future__ import annotations

import io
import logging

import pytest

from bisonsync.logs import RedactSecrets, SafeFormatter, escape_control


@pytest.fixture
def output() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("bisonsync.test_log_format")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_escape_control() -> None:
    assert escape_control("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert escape_control("\x1b[31mred\x00\x7f\x85") == "\\x1b[31mred\\x00\\x7f\\x85"
    assert escape_control("line\u2028sep\u2029") == "line\\u2028sep\\u2029"
    assert escape_control("plain: é ü 漢 /path?x=1") == "plain: é ü 漢 /path?x=1"


def test_a_value_cannot_start_a_line(output: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = output
    logger.info("GET %s 404", "/x\nERROR bisonsync.service forged\r\n\x1b[2K")
    lines = stream.getvalue().splitlines()
    assert lines == ["INFO bisonsync.test_log_format GET /x\\nERROR bisonsync.service forged\\r\\n\\x1b[2K 404"]


def test_tracebacks_keep_their_lines_indented(output: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = output
    try:
        raise ValueError("bad value\nERROR bisonsync.service forged")
    except ValueError:
        logger.exception("failed on %s", "a\nb")
    first, *rest = stream.getvalue().rstrip("\n").split("\n")
    assert first == "ERROR bisonsync.test_log_format failed on a\\nb"
    assert rest and all(line.startswith("    ") for line in rest), rest
    assert not any(line.startswith("ERROR bisonsync.service forged") for line in rest)


def test_redaction_still_applies(output: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = output
    logger.info("POST /webhooks/bison?token=%s\n", "s3cr3t-token-value")
    assert "s3cr3t" not in stream.getvalue() and "[redacted]" in stream.getvalue()
