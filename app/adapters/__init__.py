"""One module per upstream API family; each adapter translates the internal request and
reply to and from that family's wire format."""

from app.adapters.base import Adapter, Call
from app.adapters.ollama import OllamaAdapter
from app.adapters.openai_compat import OpenAICompatAdapter

# family -> adapter class; families without an entry are known but not served yet.
ADAPTERS: dict[str, type[Adapter]] = {
    "openai_compat": OpenAICompatAdapter,
    "ollama": OllamaAdapter,
}

__all__ = ["ADAPTERS", "Adapter", "Call", "OllamaAdapter", "OpenAICompatAdapter"]
