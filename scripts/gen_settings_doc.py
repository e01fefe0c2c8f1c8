#!/usr/bin/env python3
"""Write docs/settings.md from the Settings fields (tests/test_docs.py keeps it current)."""

from __future__ import annotations

import sys
from dataclasses import MISSING, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.settings import Settings

HEADER = """# Settings

Every setting is an environment variable. Secret settings can also be read from a file:
set `<NAME>_FILE` to its path (for example `OPENAI_API_KEY_FILE=/run/secrets/openai`).
This page is generated from `app/settings.py` by `scripts/gen_settings_doc.py`.

| variable | default | secret | meaning |
|---|---|---|---|
"""


def render() -> str:
    rows = []
    for f in fields(Settings):
        default = "" if f.default is MISSING else str(f.default)
        secret = "yes" if f.metadata["secret"] else ""
        rows.append(f"| `{f.metadata['env']}` | `{default}` | {secret} | {f.metadata['doc']} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
    out.write_text(render())
    print(f"wrote {out}")
