"""One module per admin page; each exposes ``routes(ctx)`` -> [(path, resource, suffix)]."""
