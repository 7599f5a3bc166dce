"""Sync jobs: mailbox poller, workspace registry, provider snapshots, reconciliation."""
