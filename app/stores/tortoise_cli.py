"""Configuration for Tortoise's own CLI (``tortoise -c app.stores.tortoise_cli.TORTOISE_ORM``),
used to write new migrations; the relay itself migrates with ``llm-relay migrate``."""

import os

from app.stores.db import tortoise_config

TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL") or "sqlite://./data/makemigrations.db")
