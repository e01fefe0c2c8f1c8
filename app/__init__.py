"""LLM Relay: one address for every LLM, every token metered.

The composition root is :func:`app.main.create_app`; nothing is built at import time.
"""

__version__ = "0.1.0"
