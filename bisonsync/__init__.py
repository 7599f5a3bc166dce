"""bisonsync package."""
