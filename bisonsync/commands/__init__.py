"""Command groups of the `bisonsync` CLI."""
