"""The providers the relay knows by name, and how each one is configured."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A built-in provider: enabled by ``<ENV>_API_KEY``, moved by ``<ENV>_BASE_URL``."""

    name: str
    env: str
    family: str
    base_url: str
    catalog_key: str


BUILTIN_PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec("openai", "OPENAI", "openai_compat", "https://api.openai.com/v1", "openai"),
    ProviderSpec("anthropic", "ANTHROPIC", "anthropic", "https://api.anthropic.com", "anthropic"),
    ProviderSpec("gemini", "GOOGLE", "gemini", "https://generativelanguage.googleapis.com", "gemini"),
    ProviderSpec("perplexity", "PERPLEXITY", "perplexity", "https://api.perplexity.ai", "perplexity"),
    ProviderSpec("groq", "GROQ", "openai_compat", "https://api.groq.com/openai/v1", "groq"),
    ProviderSpec("deepseek", "DEEPSEEK", "openai_compat", "https://api.deepseek.com", "deepseek"),
    ProviderSpec("mistral", "MISTRAL", "openai_compat", "https://api.mistral.ai/v1", "mistral"),
    ProviderSpec("xai", "XAI", "openai_compat", "https://api.x.ai/v1", "xai"),
    ProviderSpec("openrouter", "OPENROUTER", "openai_compat", "https://openrouter.ai/api/v1", "openrouter"),
)

BUILTIN_BY_NAME = {spec.name: spec for spec in BUILTIN_PROVIDERS}


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider this relay can reach right now."""

    name: str
    family: str
    base_url: str
    api_key: str | None = None
    catalog_key: str | None = None
    kind: str = "builtin"  # builtin | ollama | custom
    discover: bool = False  # its model list comes from the server, refreshed in the background
    models: tuple[str, ...] = ()  # models declared in configuration (custom providers)
    origin: str = "env"  # env | file | admin: where it was declared, and so who may change it

    @property
    def is_ollama(self) -> bool:
        return self.family == "ollama"
