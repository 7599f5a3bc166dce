"""The one table from library outcomes and errors to HTTP (service/errors.py), and the plugin's exception handlers."""

from __future__ import annotations

from typing import get_args

from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from bisonsync.events import InvalidDelivery
from bisonsync.ingest import Outcome
from bisonsync.settings import Settings
from bisonsync.store import PostgresStore, StoreError, StoreInvalidInput, StoreUnavailable
from service.errors import ANSWERS
from service.metrics import OUTCOMES
from service.plugin import BisonsyncPlugin


def test_every_outcome_has_one_answer_and_a_bounded_metric_label() -> None:
    assert set(ANSWERS) == set(get_args(Outcome))
    assert {a.metric for a in ANSWERS.values()} <= OUTCOMES
    assert ANSWERS["unavailable"].headers == {"Retry-After": "30"}


async def test_library_errors_escaping_a_handler_get_the_outcome_answers() -> None:
    errors: dict[str, Exception] = {
        "unavailable": StoreUnavailable("pool closed"),
        "invalid": StoreInvalidInput("value too long", code="22001"),
        "store": StoreError("boom"),
        "delivery": InvalidDelivery("not an Email Bison event"),
    }

    @get("/raise/{kind:str}", sync_to_thread=False)
    def raising(kind: FromPath[str]) -> None:
        raise errors[kind]

    plugin = BisonsyncPlugin(
        Settings(jobs_enabled=False), store=PostgresStore("postgresql://unused@127.0.0.1:1/unused"), background=[]
    )
    async with AsyncTestClient(Litestar([raising], plugins=[plugin])) as client:
        r = await client.get("/raise/unavailable")
        assert (r.status_code, r.json(), r.headers["retry-after"]) == (
            503,
            {"error": "database unavailable, retry later"},
            "30",
        )
        r = await client.get("/raise/invalid")
        assert r.status_code == 422 and r.json()["error"].startswith("invalid input (SQLSTATE 22001)")
        r = await client.get("/raise/store")
        assert (r.status_code, r.json()) == (500, {"error": "internal error"})
        r = await client.get("/raise/delivery")
        assert (r.status_code, r.json()) == (400, {"error": "not an Email Bison event"})
