"""Commands of the service layer (`bisonsync serve`, `bisonsync run`), dispatched by `bisonsync.cli`."""
