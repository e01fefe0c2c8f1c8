"""The JSON admin API (docs/admin-api.md): one module per area, ``routes(ctx)`` like the pages."""
