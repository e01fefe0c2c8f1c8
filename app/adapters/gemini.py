"""Gemini's native API (placeholder until the adapter lands)."""

from __future__ import annotations

from app.adapters.base import Adapter, Call
from app.errors import NotSupported
from app.pipeline.core import Reply


class GeminiAdapter(Adapter):
    async def send(self, call: Call) -> Reply:
        raise NotSupported("the Gemini adapter is not implemented yet")
