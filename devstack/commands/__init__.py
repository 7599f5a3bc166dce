"""Commands of the dev tooling (`bisonsync dev`, `bisonsync simulate`), dispatched by `bisonsync.cli`."""
