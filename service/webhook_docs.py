"""What the webhook routes document in OpenAPI beyond what Litestar infers from the handlers.

The handlers read the body raw (they authenticate and decode it themselves, see `bisonsync.ingest`) and read the
token from the request, so Litestar sees neither: without this module the document would describe a webhook that
takes no body and no token, and an empty POST would look valid. The schemas say what a sender must send; the
decoder is the authority and is a little more lenient (numeric strings for ids, any casing of the type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, Parameter, RequestBody, Schema

_MAX_ID = 2**63 - 1


def _nullable(schema: Schema) -> Schema:
    return Schema(one_of=[schema, Schema(type=OpenAPIType.NULL)])


#: a database id as Email Bison sends it: a positive integer that fits a bigint, or the same as a numeric string
BISON_ID = Schema(one_of=[
    Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=_MAX_ID),
    Schema(type=OpenAPIType.STRING, pattern=r"^[1-9][0-9]{0,17}$"),
])
_TEXT = _nullable(Schema(type=OpenAPIType.STRING))
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
#: blank, or a host name with an optional scheme, port and path (what `bisonsync.events.instance_host` accepts,
#: IPv6 literals and international names aside)
INSTANCE_URL = (
    rf"^\s*$|^\s*(?:[A-Za-z][A-Za-z0-9+.-]*://)?{_LABEL}(?:\.{_LABEL})*\.?(?::[0-9]{{1,5}})?(?:/[^\s?#]*)?\s*$"
)


def _event(type_schema: Schema) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "workspace_id"],
        properties={
            "type": type_schema,
            "workspace_id": BISON_ID,
            "workspace_name": _TEXT,
            "name": _TEXT,
            "instance_url": _nullable(Schema(type=OpenAPIType.STRING, pattern=INSTANCE_URL, description=(
                "Email Bison base URL or host; its lower-case host is the tenant's instance (absent or blank: "
                "BISONSYNC_DEFAULT_INSTANCE)"))),
        },
    )


def _lead() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        description="needs an `id` or a non-blank `email`",
        any_of=[
            Schema(required=["id"], properties={"id": BISON_ID}),
            Schema(required=["email"], properties={"email": Schema(type=OpenAPIType.STRING, pattern=r"\S")}),
        ],
        properties={"id": _nullable(BISON_ID), "email": _TEXT},
    )


#: `{"event": {...}, "data": {...}}`; `data` is checked per event type (docs/events.md); unknown types are stored
UNIVERSAL_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["event"],
    properties={
        "event": _event(Schema(type=OpenAPIType.STRING, pattern=r"\S", description="event type, any casing")),
        "data": _nullable(Schema(type=OpenAPIType.OBJECT)),
    },
)
LEGACY_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["event", "data"],
    properties={
        "event": _event(Schema(type=OpenAPIType.STRING, enum=["lead_interested"])),
        "data": Schema(type=OpenAPIType.OBJECT, required=["lead"], properties={"lead": _lead()}),
    },
)


def token_parameters(header: str) -> list[Parameter]:
    described = "the global webhook token or the workspace's own token; the query parameter wins when both are sent"
    return [
        Parameter(name="token", param_in="query", required=False, schema=Schema(type=OpenAPIType.STRING),
                  description=f"Webhook token ({described})"),
        Parameter(name=header, param_in="header", required=False, schema=Schema(type=OpenAPIType.STRING),
                  description=f"Webhook token as a header ({described})"),
    ]


def webhook_operation(body: Schema, token_header: str) -> type[Operation]:
    """An `operation_class` for a webhook route: documents its JSON body and its token parameters."""

    @dataclass
    class WebhookOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=body)},
                required=True,
                description="One Email Bison webhook delivery (at most BISONSYNC_WEBHOOK_MAX_BYTES)",
            )
            self.parameters = [*(self.parameters or []), *token_parameters(token_header)]

    return WebhookOperation


class WebhookAccepted(msgspec.Struct, omit_defaults=True):
    """200 from the universal webhook."""

    #: applied | duplicate | ignored
    status: str
    event_type: str
    delivery_id: int | None
    processing_time_ms: float
    duplicate_of: int | None = None
    lead_id: str | None = None
    #: created | updated | not_found
    lead_action: str | None = None


class LegacyInterestedAccepted(msgspec.Struct):
    """200 from the predecessor's `bison-interested-webhook`, in its shape."""

    success: bool
    action: str
    lead_id: str | None
    workspace: str
    status: str
    processing_time_ms: float | None


def success_response(model: Any) -> ResponseSpec:
    return ResponseSpec(model, description="Accepted: applied, duplicate (counted once) or ignored (kept for replay)",
                        generate_examples=False)
