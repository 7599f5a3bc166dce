"""Email Bison REST client: typed models, typed errors, Laravel pagination, retries, workspace scoping."""

from bisonsync.bison.client import DEFAULT_LIMITS, DEFAULT_TIMEOUT, BisonClient, WorkspaceSession
from bisonsync.bison.endpoints import PAGE_SIZE
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
    PaginationCapExceeded,
)
from bisonsync.bison.keys import ApiKey, KeyKind
from bisonsync.bison.models import (
    EVENT_TYPES,
    MAILBOX_STATUSES,
    EventType,
    Links,
    Meta,
    Page,
    SenderEmail,
    Tag,
    TestEventResult,
    Webhook,
    Workspace,
    WorkspaceStats,
)
from bisonsync.bison.pagination import DEFAULT_MAX_PAGES
from bisonsync.bison.retry import RetryPolicy, parse_retry_after

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_TIMEOUT",
    "EVENT_TYPES",
    "MAILBOX_STATUSES",
    "PAGE_SIZE",
    "ApiKey",
    "BisonAuthError",
    "BisonClient",
    "BisonConnectionError",
    "BisonError",
    "BisonNotFound",
    "BisonProtocolError",
    "BisonRateLimited",
    "BisonRequestError",
    "BisonServerError",
    "BisonTimeout",
    "EventType",
    "KeyKind",
    "Links",
    "Meta",
    "Page",
    "PaginationCapExceeded",
    "RetryPolicy",
    "SenderEmail",
    "Tag",
    "TestEventResult",
    "Webhook",
    "Workspace",
    "WorkspaceSession",
    "WorkspaceStats",
    "parse_retry_after",
]
