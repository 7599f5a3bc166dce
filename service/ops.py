"""Operations routes: liveness, readiness (database reachable and migrated), Prometheus metrics."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from bisonsync import migrations
from bisonsync.store import Store, StoreError
from service.metrics import ServiceMetrics


class OpsController(Controller):
    """What load balancers, orchestrators and Prometheus ask."""

    tags = ["ops"]

    @get("/healthz", operation_id="healthz")
    async def healthz(self) -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @get(
        "/readyz",
        operation_id="readyz",
        responses={
            503: ResponseSpec(
                dict[str, str], description="Database unreachable or schema not migrated", generate_examples=False
            )
        },
    )
    async def readyz(self, store: NamedDependency[Store]) -> Response[dict[str, str]]:
        """Readiness: the database answers and has every migration this package bundles."""
        try:
            await store.ping()
            pending = await migrations.pending_in(store)
        except StoreError as exc:  # an answer, not an error: readiness says why it is not ready
            return Response({"status": "unavailable", "error": str(exc)}, status_code=503)
        if pending:  # the code expects a newer schema: `bisonsync db migrate`
            return Response({"status": "schema behind", "pending": " ".join(pending)}, status_code=503)
        return Response({"status": "ready"}, status_code=200)

    @get("/metrics", operation_id="metrics", media_type="text/plain; version=0.0.4")
    async def prometheus_metrics(self, metrics: NamedDependency[ServiceMetrics]) -> bytes:
        """Prometheus text format."""
        return metrics.render()
