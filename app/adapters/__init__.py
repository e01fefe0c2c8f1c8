"""One module per upstream API family; each adapter translates the internal request and
reply to and from that family's wire format, and sends it through the one upstream HTTP client
(:mod:`app.adapters.client`)."""

from app.adapters.anthropic import AnthropicAdapter
from app.adapters.base import Adapter, Call
from app.adapters.client import HttpLimits, Opened, UpstreamClient
from app.adapters.gemini import GeminiAdapter
from app.adapters.ollama import OllamaAdapter
from app.adapters.openai_compat import OpenAICompatAdapter
from app.adapters.perplexity import PerplexityAdapter

# family -> adapter class; families without an entry are known but not served yet.
ADAPTERS: dict[str, type[Adapter]] = {
    "openai_compat": OpenAICompatAdapter,
    "ollama": OllamaAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "perplexity": PerplexityAdapter,
}

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AnthropicAdapter",
    "Call",
    "GeminiAdapter",
    "HttpLimits",
    "OllamaAdapter",
    "OpenAICompatAdapter",
    "Opened",
    "PerplexityAdapter",
    "UpstreamClient",
]
