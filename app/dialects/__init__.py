"""The two inbound wire formats: decoding each into the internal request and encoding the
internal reply (and every error) back. Symmetric with :mod:`app.adapters` for outbound."""
