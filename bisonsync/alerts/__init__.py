"""Alerts: conditions scanned from the database, deduplicated in `alert_log`, sent to Slack by a background worker.

```python
worker = AlertWorker(store, settings)            # SLACK_WEBHOOK_URL, per-workspace slack_webhook_ref
worker.start()                                   # in the service lifespan
await worker.run_checks()                        # scheduled: scan, record (dedup), wake the sender
await worker.enqueue(alert)                      # never blocks, never raises
await worker.stop()
```
See docs/alerts.md.
"""

from bisonsync.alerts.conditions import Evaluation, evaluate, evaluate_alerts, summarize
from bisonsync.alerts.jobs import analytics_jobs
from bisonsync.alerts.log import ClaimedAlert, SendResult, claim_alerts, finish_alerts, record_alerts
from bisonsync.alerts.models import (
    CONDITIONS,
    MAILBOX_DISCONNECTED,
    MAILBOX_FAILED,
    REPLY_RATE_DROP,
    SYNC_RUN_FAILED,
    WEBHOOK_SILENCE,
    Alert,
    AlertConfig,
    anchored_window,
    bucket_start,
)
from bisonsync.alerts.slack import PostResult, post_message, render_alert, render_batch, url_label
from bisonsync.alerts.worker import AlertWorker, Destination, FlushReport

__all__ = [
    "CONDITIONS",
    "MAILBOX_DISCONNECTED",
    "MAILBOX_FAILED",
    "REPLY_RATE_DROP",
    "SYNC_RUN_FAILED",
    "WEBHOOK_SILENCE",
    "Alert",
    "AlertConfig",
    "AlertWorker",
    "ClaimedAlert",
    "Destination",
    "Evaluation",
    "FlushReport",
    "PostResult",
    "SendResult",
    "analytics_jobs",
    "anchored_window",
    "bucket_start",
    "claim_alerts",
    "evaluate",
    "evaluate_alerts",
    "finish_alerts",
    "post_message",
    "record_alerts",
    "render_alert",
    "render_batch",
    "summarize",
    "url_label",
]
