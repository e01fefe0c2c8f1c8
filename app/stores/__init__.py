"""Persistence: Tortoise models, the database lifecycle, the usage writer and every query."""
