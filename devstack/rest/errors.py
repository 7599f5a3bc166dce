"""PostgREST's error shapes and its SQLSTATE -> HTTP status table, in one place.

Every failure the emulator reports is a `RestError`; the handlers render it as PostgREST does: a JSON object with
`code`, `details`, `hint` and `message`, a `Proxy-Status: PostgREST; error=<code>` header (postgrest-py reads it
when the body is empty, e.g. for HEAD) and `WWW-Authenticate` on 401s. The mapping follows PostgREST's
`Error.hs` (`mapSQLtoHTTP`), which the docs' table in `references/errors.rst` summarises.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import msgspec

_encoder = msgspec.json.Encoder()


class RestError(Exception):
    """An error response in PostgREST's format."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        hint: Any = None,
        headers: Mapping[str, str] | None = None,
        schema_miss: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers: dict[str, str] = dict(headers or {})
        #: raised because a table/column/function was not in the (possibly stale) schema cache
        self.schema_miss = schema_miss

    def body(self) -> bytes:
        return _encoder.encode({"code": self.code, "details": self.details, "hint": self.hint, "message": self.message})

    def response_headers(self) -> dict[str, str]:
        headers = {"Proxy-Status": f"PostgREST; error={self.code}", **self.headers}
        if self.status == 401 and "WWW-Authenticate" not in headers:
            headers["WWW-Authenticate"] = "Bearer"
        return headers


# -- group 1: the request ---------------------------------------------------------------------------------------
def query_param_error(message: str, details: str | None = None) -> RestError:
    return RestError(400, "PGRST100", message, details=details)


def invalid_rpc_method(method: str) -> RestError:
    return RestError(405, "PGRST101", f"Cannot use the {method} method on RPC")


def invalid_body(message: str = "Empty or invalid json") -> RestError:
    return RestError(400, "PGRST102", message)


def invalid_range(details: str) -> RestError:
    return RestError(416, "PGRST103", "Requested range not satisfiable", details=details)


def unacceptable_schema(schema: str, exposed: Iterable[str]) -> RestError:
    return RestError(
        406,
        "PGRST106",
        f"Invalid schema: {schema}",
        hint="Only the following schemas are exposed: " + ", ".join(exposed),
    )


def media_type_error(media_types: Iterable[str]) -> RestError:
    return RestError(406, "PGRST107", "None of these media types are available: " + ", ".join(media_types))


def unsupported_content_type(content_type: str) -> RestError:
    return RestError(415, "PGRST107", f"The request's Content-Type is not acceptable: {content_type}")


def singularity_error(rows: int) -> RestError:
    return RestError(
        406, "PGRST116", "Cannot coerce the result to a single JSON object", details=f"The result contains {rows} rows"
    )


def unsupported_method(method: str) -> RestError:
    return RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")


def invalid_preferences(prefs: Iterable[str]) -> RestError:
    return RestError(
        400,
        "PGRST122",
        "Invalid preferences given with handling=strict",
        details="Invalid preferences: " + ", ".join(prefs),
    )


def max_affected_violation(rows: int) -> RestError:
    return RestError(
        400,
        "PGRST124",
        "Query result exceeds max-affected preference constraint",
        details=f"The query affects {rows} rows",
    )


def not_implemented(details: str) -> RestError:
    return RestError(400, "PGRST127", "Feature not implemented", details=details)


# -- group 2: the schema cache ----------------------------------------------------------------------------------
def _closest(word: str, candidates: Iterable[str], cutoff: float) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return found[0] if found else None


def no_relationship(parent: str, child: str, schema: str, hint: str | None = None) -> RestError:
    using = f" using the hint '{hint}'" if hint else ""
    return RestError(
        400,
        "PGRST200",
        f"Could not find a relationship between '{parent}' and '{child}' in the schema cache",
        details=f"Searched for a foreign key relationship between '{parent}' and '{child}'{using} in the schema "
        f"'{schema}', but no matches were found.",
        schema_miss=True,
    )


def ambiguous_relationship(parent: str, child: str, details: list[dict[str, str]], hints: Iterable[str]) -> RestError:
    options = ", ".join(f"'{child}!{h}'" for h in hints)
    return RestError(
        300,
        "PGRST201",
        f"Could not embed because more than one relationship was found for '{parent}' and '{child}'",
        details=details,
        hint=f"Try changing '{child}' to one of the following: {options}. Find the desired relationship in the "
        "'details' key.",
    )


def aggregates_not_allowed() -> RestError:
    return RestError(400, "PGRST123", "Use of aggregate functions is not allowed")


def no_function(
    schema: str,
    name: str,
    arg_names: Iterable[str],
    *,
    post_json: bool,
    all_functions: Iterable[str],
    overload_params: Iterable[Iterable[str]],
) -> RestError:
    keys = sorted(arg_names)
    func = f"{schema}.{name}"
    sig = f"({', '.join(keys)})" if keys else " without parameters"
    if keys:
        searched = (" with parameters " if len(keys) > 1 else " with parameter ") + ", ".join(keys)
    else:
        searched = " without parameters"
    if post_json:
        searched += " or with a single unnamed json/jsonb parameter"
    overloads = ["(" + ", ".join(sorted(p)) + ")" for p in overload_params]
    if overloads:
        best = _closest("(" + ", ".join(keys) + ")", overloads, 0.33)
        hint = f"Perhaps you meant to call the function {func}{best}" if best else None
    else:
        other = _closest(name, all_functions, 0.75)
        hint = f"Perhaps you meant to call the function {schema}.{other}" if other else None
    return RestError(
        404,
        "PGRST202",
        f"Could not find the function {func}{sig} in the schema cache",
        details=f"Searched for the function {func}{searched}, but no matches were found in the schema cache.",
        hint=hint,
        schema_miss=True,
    )


def ambiguous_function(candidates: Iterable[str]) -> RestError:
    return RestError(
        300,
        "PGRST203",
        "Could not choose the best candidate function between: " + ", ".join(candidates),
        hint="Try renaming the parameters or the function itself in the database so function overloading "
        "can be resolved",
    )


def column_not_found(relation: str, column: str) -> RestError:
    return RestError(
        400, "PGRST204", f"Could not find the '{column}' column of '{relation}' in the schema cache", schema_miss=True
    )


def table_not_found(schema: str, name: str, all_tables: Iterable[str]) -> RestError:
    other = _closest(name, all_tables, 0.75)
    return RestError(
        404,
        "PGRST205",
        f"Could not find the table '{schema}.{name}' in the schema cache",
        hint=f"Perhaps you meant the table '{schema}.{other}'" if other else None,
        schema_miss=True,
    )


def undefined_column(relation: str, column: str, columns: Iterable[str]) -> RestError:
    """What PostgreSQL itself answers (PostgREST forwards it) for a filter/select/order on a missing column."""
    other = _closest(column, columns, 0.6)
    return RestError(
        400,
        "42703",
        f"column {relation}.{column} does not exist",
        hint=f'Perhaps you meant to reference the column "{relation}.{other}".' if other else None,
        schema_miss=True,
    )


# -- group 3: JWT -----------------------------------------------------------------------------------------------
def jwt_error(message: str, *, claims: bool = False) -> RestError:
    """PGRST301 for a token that cannot be decoded or verified, PGRST303 for failed claims (e.g. expired)."""
    return RestError(
        401,
        "PGRST303" if claims else "PGRST301",
        message,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'},
    )


# -- database errors --------------------------------------------------------------------------------------------
def connection_error(details: str | None) -> RestError:
    return RestError(503, "PGRST000", "Database connection error. Retrying the connection.", details=details)


def status_for_sqlstate(code: str, message: str, *, authenticated: bool) -> int:
    """PostgREST's `mapSQLtoHTTP`."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42883": 404,
        "42P01": 404,
        "42P17": 500,
    }
    if code in exact:
        return exact[code]
    if code == "42501":
        return 403 if authenticated else 401
    if code == "21000":  # pg-safeupdate's refusal is the client's fault; anything else is a server-side bug
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":  # a JWT naming a role that does not exist
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if code.startswith("PT"):
        return int(code[2:]) if code[2:].isdigit() and 100 <= int(code[2:]) <= 599 else 500
    prefixes = {
        "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
        "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, "F0": 500, "HV": 500,
        "P0": 500, "XX": 500,
    }  # fmt: skip
    return prefixes.get(code[:2], 400)


def from_postgres(exc: asyncpg.PostgresError, *, authenticated: bool) -> RestError:
    code = str(getattr(exc, "sqlstate", None) or "XX000")
    message = str(getattr(exc, "message", None) or exc)
    detail = getattr(exc, "detail", None)
    hint = getattr(exc, "hint", None)
    if code == "PGRST":
        return _raise_pgrst(message, detail)
    return RestError(
        status_for_sqlstate(code, message, authenticated=authenticated), code, message, details=detail, hint=hint
    )


def _raise_pgrst(message: str, detail: str | None) -> RestError:
    """`RAISE SQLSTATE 'PGRST' USING message = '{json}', detail = '{"status":..,"headers":{..}}'`."""
    try:
        msg = msgspec.json.decode(message)
        if not isinstance(msg, dict) or "code" not in msg or "message" not in msg:
            raise ValueError
    except (msgspec.DecodeError, ValueError):
        return RestError(
            500,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            details=f"Invalid JSON value for MESSAGE: '{message}'",
            hint="MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: "
            "'details', 'hint'.",
        )
    try:
        if detail is None:
            raise ValueError
        det = msgspec.json.decode(detail)
        if not isinstance(det, dict) or not isinstance(det.get("status"), int):
            raise ValueError
    except (msgspec.DecodeError, ValueError):
        return RestError(
            500,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            details="DETAIL is missing in the RAISE statement"
            if detail is None
            else f"Invalid JSON value for DETAIL: '{detail}'",
            hint="DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: "
            "'status_text'.",
        )
    headers = det.get("headers") or {}
    return RestError(
        int(det["status"]),
        str(msg["code"]),
        str(msg["message"]),
        details=msg.get("details"),
        hint=msg.get("hint"),
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
    )
