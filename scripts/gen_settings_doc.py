#!/usr/bin/env python3
"""Write docs/settings.md and .env.example from the Settings fields (tests/test_docs.py keeps
both current)."""

from __future__ import annotations

import sys
from dataclasses import MISSING, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.providers import BUILTIN_PROVIDERS
from app.settings import Settings

HEADER = """# Settings

Every setting is an environment variable. Secret settings can also be read from a file:
set `<NAME>_FILE` to its path (for example `OPENAI_API_KEY_FILE=/run/secrets/openai`).
A number must be finite and above 0, except that `UPSTREAM_RETRIES`, `UPSTREAM_RETRY_BUDGET`,
`SHUTDOWN_GRACE_SECONDS` and the settings whose line says what 0 means may be 0, and ports go
from 0 (any free port) to 65535; otherwise the relay refuses to start with one line naming it.
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


def render_env() -> str:
    """Every setting with its default, commented out, for compose's env_file."""
    lines = [
        "# LLM Relay settings (generated from app/settings.py by scripts/gen_settings_doc.py).",
        "# Uncomment what you change. Secrets may instead come from files: <NAME>_FILE=/run/secrets/...",
        "",
    ]
    for f in fields(Settings):
        name = f.metadata["env"]
        lines.append(f"# {f.metadata['doc']}")
        if name == "<PROVIDER>_API_KEY":
            lines += [f"# {spec.env}_API_KEY=" for spec in BUILTIN_PROVIDERS]
        elif name == "<PROVIDER>_BASE_URL":
            lines += [f"# {spec.env}_BASE_URL={spec.base_url}" for spec in BUILTIN_PROVIDERS]
        elif name.startswith("<"):
            lines.append("# ADMIN_PASSWORD_FILE=/run/secrets/admin_password")
        else:
            default = "" if f.default is MISSING else f.default
            lines.append(f"# {name}={str(default).lower() if isinstance(default, bool) else default}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    (root / "docs" / "settings.md").write_text(render())
    (root / ".env.example").write_text(render_env())
    print("wrote docs/settings.md and .env.example")
