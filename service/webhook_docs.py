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

from bisonsync.events import Lead, LeadInterested

_MAX_ID = 2**63 - 1


def _nullable(schema: Schema) -> Schema:
    return Schema(one_of=[schema, Schema(type=OpenAPIType.NULL)])


#: a database id as Email Bison sends it: a positive integer that fits a bigint, or the same as a numeric string
BISON_ID = Schema(
    one_of=[
        Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=_MAX_ID),
        Schema(type=OpenAPIType.STRING, pattern=r"^[1-9][0-9]{0,17}$"),
    ]
)
_TEXT = _nullable(Schema(type=OpenAPIType.STRING))
#: not blank: some character Python's str.strip() keeps (it strips \x1c-\x1f and \x85 too, which \s leaves out)
_NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


def _event(type_schema: Schema) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "workspace_id"],
        properties={
            "type": type_schema,
            "workspace_id": BISON_ID,
            "workspace_name": _TEXT,
            "name": _TEXT,
            "instance_url": _nullable(
                Schema(
                    type=OpenAPIType.STRING,
                    description=(
                        "Information only, kept on the ledger row: the instance is the configured one (BISON_INSTANCE, "
                        "else the host of BISON_BASE_URL, else BISONSYNC_DEFAULT_INSTANCE; or `?instance=`), never this"
                    ),
                )
            ),
        },
    )


#: what the decoder's lax mode also takes for a boolean: 0/1 and "true"/"false"/"1"/"0" in any case
_LAX_BOOL = Schema(
    one_of=[
        Schema(type=OpenAPIType.BOOLEAN),
        Schema(type=OpenAPIType.INTEGER, enum=[0, 1]),
        Schema(type=OpenAPIType.STRING, pattern="^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$"),
    ]
)


def _from_model(node: dict[str, Any], defs: dict[str, Any]) -> Schema:
    """A msgspec JSON Schema node as a Litestar Schema, `$ref`s inlined, ids and booleans widened to what the
    lax decoder takes (so the document and the decoder agree in both directions)."""
    if "$ref" in node:
        return _from_model(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node:
        return Schema(any_of=[_from_model(n, defs) for n in node["anyOf"]], description=node.get("description"))
    kind = node.get("type")
    if kind == "integer" and node.get("minimum") == 1:
        return BISON_ID
    if kind == "boolean":
        return _LAX_BOOL
    return Schema(
        type=OpenAPIType(kind) if kind else None,
        title=node.get("title"),
        description=node.get("description"),
        properties={k: _from_model(v, defs) for k, v in node["properties"].items()} if "properties" in node else None,
        required=node.get("required") or None,
        items=_from_model(node["items"], defs) if "items" in node else None,
    )


def _model_schema(model: type[msgspec.Struct]) -> Schema:
    document = msgspec.json.schema(model)
    return _from_model(document, document.get("$defs", {}))


def _lead_interested_data() -> Schema:
    """`data` of lead_interested, from the decoder's own models, plus the rule the decoder adds: the lead needs an
    `id` or a non-blank `email`."""
    data = _model_schema(LeadInterested)
    assert data.properties is not None
    lead = data.properties["lead"]
    assert isinstance(lead, Schema)
    lead.any_of = [
        Schema(required=["id"], properties={"id": BISON_ID}),
        Schema(required=["email"], properties={"email": Schema(type=OpenAPIType.STRING, pattern=_NOT_BLANK)}),
    ]
    # a field of the lead other than its identity, in an unexpected shape, is left out of the typed data (never
    # refused): any value is accepted there
    if lead.properties:
        for name in list(lead.properties):
            if name not in Lead.identity_fields:
                lead.properties[name] = Schema(description=f"`{name}` as Email Bison sends it (any value accepted)")
    # a part the type does not require is left out of the typed data when it has another shape (never refused)
    for name, part in list(data.properties.items()):
        if name not in LeadInterested.required and isinstance(part, Schema):
            data.properties[name] = Schema(
                description=(
                    f"Optional `{name}` object (see docs/events.md); any value is accepted: a shape the decoder cannot "
                    "type is kept in the payload and left out of the typed data"
                )
            )
    return data


#: `{"event": {...}, "data": {...}}`
UNIVERSAL_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["event"],
    properties={
        "event": _event(Schema(type=OpenAPIType.STRING, pattern=_NOT_BLANK, description="event type, any casing")),
        "data": Schema(
            description=(
                "An object for each of the 17 known types, checked per type (docs/events.md); for any other type, "
                "whatever is sent is stored as is (status ignored, replayable)"
            )
        ),
    },
)
LEGACY_BODY = Schema(
    type=OpenAPIType.OBJECT,
    required=["event", "data"],
    properties={
        "event": _event(Schema(type=OpenAPIType.STRING, enum=["lead_interested"])),
        "data": _lead_interested_data(),
    },
)


def token_parameters(header: str) -> list[Parameter]:
    described = "the global webhook token or the workspace's own token; the query parameter wins when both are sent"
    return [
        Parameter(
            name="token",
            param_in="query",
            required=False,
            schema=Schema(type=OpenAPIType.STRING),
            description=f"Webhook token ({described})",
        ),
        Parameter(
            name="instance",
            param_in="query",
            required=False,
            schema=Schema(type=OpenAPIType.STRING),
            description="For a deployment serving several Email Bison instances: which one (a host listed in "
            "BISONSYNC_WEBHOOK_INSTANCES); default: the configured instance",
        ),
        Parameter(
            name=header,
            param_in="header",
            required=False,
            schema=Schema(type=OpenAPIType.STRING),
            description=f"Webhook token as a header ({described})",
        ),
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
    return ResponseSpec(
        model,
        description="Accepted: applied, duplicate (counted once) or ignored (kept for replay)",
        generate_examples=False,
    )
