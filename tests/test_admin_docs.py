"""Every admin API endpoint is documented under docs/admin-api/ (a test fails otherwise)."""

from __future__ import annotations

import re
from pathlib import Path

import falcon.inspect

from app.admin import create_admin_app
from app.main import create_app
from app.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "admin-api"


def normalized(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_every_api_endpoint_is_documented() -> None:
    app = create_admin_app(create_app(Settings(admin_password="x"), migrate=False))
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    documented = {(m, normalized(p)) for m, p in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/api/[^`?\s]*)", text)}
    missing = []
    for route in falcon.inspect.inspect_routes(app):
        if not route.path.startswith("/api/"):
            continue
        for method in route.methods:
            if method.internal or method.method in ("OPTIONS", "HEAD"):
                continue
            if (method.method, normalized(route.path)) not in documented:
                missing.append(f"{method.method} {route.path}")
    assert not missing, f"undocumented admin API endpoints: {missing}"
