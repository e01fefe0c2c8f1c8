"""The admin UI and its JSON API: server-rendered Jinja2 pages with htmx, on ``ADMIN_PORT``."""

from app.admin.app import create_admin_app

__all__ = ["create_admin_app"]
