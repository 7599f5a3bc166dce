"""Store failures, classified by what the caller should do about them."""

from __future__ import annotations


class StoreError(Exception):
    """A store call failed. `code` is the SQLSTATE / PostgREST code when one is known."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class StoreUnavailable(StoreError):
    """Transient: the database or gateway is unreachable, overloaded, restarting, or the transaction lost a race.

    Nothing was applied (every store call is one transaction); the sender should retry (HTTP 503).
    """


class StoreInvalidInput(StoreError):
    """The database rejected the input itself: a data exception (22xxx, e.g. 22023 from a SQL function or 22001
    value too long), an integrity violation (23xxx) or a value too large to index (54000, program limit exceeded).
    Retrying the same input won't help."""


# SQLSTATE prefixes/codes that mean "try again later".
_TRANSIENT_PREFIXES = ("08", "53", "57P", "40001", "40P01", "55P03", "58")
_INVALID_INPUT_PREFIXES = ("22", "23", "54000")


def classify_sqlstate(code: str | None, message: str) -> StoreError:
    if code and code.startswith(_TRANSIENT_PREFIXES):
        return StoreUnavailable(message, code)
    if code and code.startswith(_INVALID_INPUT_PREFIXES):
        return StoreInvalidInput(message, code)
    return StoreError(message, code)
