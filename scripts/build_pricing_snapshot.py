#!/usr/bin/env python3
"""Regenerate app/data/pricing.json (the bundled pricing snapshot) from LiteLLM's model catalog.

Source: LiteLLM's model_prices_and_context_window.json (MIT licence, BerriAI), e.g. the copy in
../shared/data/litellm_model_prices.json. A running relay updates its prices with
``llm-relay pricing sync`` instead; this script refreshes what ships with the project.

    python scripts/build_pricing_snapshot.py PATH_TO_LITELLM_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.pricing.catalog_build import build_snapshot


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/litellm_model_prices.json")
    out = Path(__file__).resolve().parent.parent / "app" / "data" / "pricing.json"
    snapshot = build_snapshot(json.loads(source.read_text()))
    out.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    counts = {p: len(m) for p, m in snapshot["models"].items()}
    print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    main()
