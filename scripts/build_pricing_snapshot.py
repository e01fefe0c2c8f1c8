#!/usr/bin/env python3
"""Regenerate app/data/pricing.json from LiteLLM's model catalog.

Source: LiteLLM's model_prices_and_context_window.json (MIT licence, BerriAI), e.g. the copy in
../shared/data/litellm_model_prices.json. Only the providers the relay serves are kept, and
only the fields pricing and model listing use.

    python scripts/build_pricing_snapshot.py PATH_TO_LITELLM_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "perplexity": "perplexity",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "xai": "xai",
    "openrouter": "openrouter",
}
MODES = {"chat", "completion", "embedding", "responses"}
KEEP_PREFIXES = ("input_cost", "output_cost", "cache_", "search_", "max_", "supports_", "tiered")
KEEP = {"mode", "deprecation_date", "web_search_billing_unit", "litellm_provider"}


def build(catalog: dict) -> dict:
    models: dict[str, dict[str, dict]] = {}
    for key, entry in sorted(catalog.items()):
        if not isinstance(entry, dict) or key == "sample_spec":
            continue
        provider = PROVIDERS.get(entry.get("litellm_provider", ""))
        if provider is None or entry.get("mode") not in MODES:
            continue
        model = key.split("/", 1)[1] if key.startswith(provider + "/") else key
        if model.startswith("ft:"):
            continue  # fine-tuning templates, not models anyone can call by that name
        kept = {k: v for k, v in entry.items() if k in KEEP or k.startswith(KEEP_PREFIXES)}
        models.setdefault(provider, {})[model] = kept
    return {
        "attribution": "Generated from LiteLLM's model_prices_and_context_window.json "
        "(MIT licence, Copyright (c) 2023 Berri AI) by scripts/build_pricing_snapshot.py.",
        "rates": "USD per token (per request/query where the field says so), as LiteLLM publishes them",
        "models": models,
    }


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/litellm_model_prices.json")
    out = Path(__file__).resolve().parent.parent / "app" / "data" / "pricing.json"
    snapshot = build(json.loads(source.read_text()))
    out.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    counts = {p: len(m) for p, m in snapshot["models"].items()}
    print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    main()
