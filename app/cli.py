"""``llm-relay``: serve, migrate, list models, export usage, reset the admin password."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from app import __version__
from app.pipeline.core import PipelineError
from app.settings import Settings, SettingsError
from app.stores.database_url import DatabaseUnusable, url_problem


def _since(value: str) -> datetime:
    """An ISO date/time, or a duration back from now such as 24h, 7d, 30m."""
    match = re.fullmatch(r"(\d+)([mhd])", value.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        try:
            return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
        except OverflowError:
            raise argparse.ArgumentTypeError(f"{value!r} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither an ISO date/time nor a duration like 24h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="llm-relay",
        description="A self-hosted LLM gateway: OpenAI (Chat and Responses), Anthropic and Ollama APIs in, "
        "every provider out, every token metered. Configured by environment variables (see docs/settings.md).",
    )
    top.add_argument("--version", action="version", version=f"llm-relay {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the relay (migrates the database first, or once it answers)")
    serve.add_argument("--host", help="listen address (default: $HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="inference API port (default: $PORT or 11434)")
    serve.add_argument("--admin-port", type=int, help="admin UI port (default: $ADMIN_PORT or 8080)")
    serve.add_argument(
        "--workers", type=int, help="worker processes on the same port (default: $WORKERS or 1); see docs/scaling.md"
    )
    commands.add_parser("migrate", help="apply database migrations and exit")
    models = commands.add_parser("models", help="list the models this configuration can reach")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pricing = commands.add_parser("pricing", help="the pricing catalog")
    pricing_commands = pricing.add_subparsers(dest="pricing_command", required=True)
    sync = pricing_commands.add_parser(
        "sync", help="fetch LiteLLM's catalog and make it the active pricing (overrides and past costs stay)"
    )
    sync.add_argument("--url", help="catalog URL or local file (default: $PRICING_URL)")
    pricing_commands.add_parser("history", help="list past syncs and what they changed")
    keys = commands.add_parser("keys", help="inference API keys (for REQUIRE_API_KEY)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key; it is printed once")
    create.add_argument("--name", default="", help="what the key is for")
    create.add_argument("--tags", default="", help="tags its requests get by default, comma-separated")
    create.add_argument("--expires-days", type=float, help="the key stops working after this many days")
    key_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key", help="the key's #id, the whole key, the start of it as listed, or its name")
    admin = commands.add_parser("admin", help="the admin UI")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    admin_commands.add_parser(
        "reset-password", help="set a new random admin password and print it (takes effect when the relay restarts)"
    )
    usage = commands.add_parser("usage", help="usage records")
    usage_commands = usage.add_subparsers(dest="usage_command", required=True)
    export = usage_commands.add_parser("export", help="write usage rows, oldest first")
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    export.add_argument("--since", type=_since, help="only rows from this ISO time or duration ago (24h, 7d)")
    export.add_argument("--output", "-o", help="write to this file instead of standard output")
    summary = usage_commands.add_parser("totals", help="requests, tokens and cost, overall or grouped")
    summary.add_argument("--by", choices=("tag", "provider", "model", "client", "day", "outcome"), help="group by")
    summary.add_argument("--since", type=_since, help="only rows from this ISO time or duration ago (24h, 7d)")
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"llm-relay: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args, settings)
    except SettingsError as exc:
        print(f"llm-relay: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"llm-relay: the pipeline cannot start: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnusable as exc:
        print(f"llm-relay: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `llm-relay models | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """The command ``args`` names; its errors are main's to tell."""
    if args.command == "serve":
        changes = {"host": args.host, "port": args.port, "admin_port": args.admin_port, "workers": args.workers}
        return serve(settings.with_changes(**{k: v for k, v in changes.items() if v is not None}))
    if args.command == "migrate":
        from app.stores.db import migrated

        asyncio.run(migrated(settings.resolved_database_url))
        print(f"migrated {settings.resolved_database_url.split('@')[-1]}")
        return 0
    if args.command == "models":
        return asyncio.run(list_models(settings, as_json=args.json))
    if args.command == "keys":
        from app import keys_cli

        if args.keys_command == "create":
            return asyncio.run(keys_cli.create(settings, args.name, args.tags, args.expires_days))
        if args.keys_command == "list":
            return asyncio.run(keys_cli.list_keys(settings))
        return asyncio.run(keys_cli.revoke(settings, args.key))
    if args.command == "admin":
        from app import admin_cli

        return asyncio.run(admin_cli.reset_password(settings))
    if args.command == "pricing":
        from app import pricing_cli

        if args.pricing_command == "sync":
            return asyncio.run(pricing_cli.sync(settings, args.url or settings.pricing_url))
        return asyncio.run(pricing_cli.history(settings))
    if args.usage_command == "totals":
        return asyncio.run(usage_totals(settings, args.by, args.since, as_json=args.json))
    return asyncio.run(export_usage(settings, args.format, args.since, args.output))


def serve(settings: Settings) -> int:
    from app.stores.db import unusable_storage

    if settings.workers < 1:
        raise SettingsError(f"WORKERS must be 1 or more, not {settings.workers}")
    if 0 < settings.max_inflight_body_bytes < settings.max_body_bytes:  # such a body could never be served
        raise SettingsError(
            f"MAX_INFLIGHT_BODY_BYTES ({settings.max_inflight_body_bytes}) must be 0 or at least "
            f"MAX_BODY_BYTES ({settings.max_body_bytes})"
        )
    # A database server may come back by itself, so the relay waits for it; a directory it may
    # not write will not, so that stops it at once (and no worker is started to die of it).
    problem = url_problem(settings.resolved_database_url) or unusable_storage(
        settings.resolved_database_url, Path(settings.usage_journal_dir or settings.data_dir)
    )
    if problem is not None:
        raise SettingsError(f"{problem} (see DATA_DIR, DATABASE_URL, USAGE_JOURNAL_DIR)")
    if settings.workers > 1:
        from app.workers import serve_workers

        return serve_workers(settings, settings.workers)
    from app.main import create_app
    from app.server import listening_socket, run_all, servers

    sockets = [[listening_socket(settings.host, settings.port, "HOST, PORT")]]
    if settings.admin_enabled:
        sockets.append([listening_socket(settings.admin_host or settings.host, settings.admin_port, "ADMIN_PORT")])
    app = create_app(settings)
    admin = None
    if settings.admin_enabled:  # only then: its pages and templates are slow to import
        from app.admin import create_admin_app

        admin = create_admin_app(app)
    run_all(servers(settings, app, admin), sockets, requests=app.services.requests)
    return 0


async def list_models(settings: Settings, *, as_json: bool) -> int:
    from app import listing
    from app.main import create_app

    app = create_app(settings)
    await app.discovery.refresh()
    rows = [
        {"model": e.label, "mode": e.mode, "source": "discovered" if e.discovered else "catalog"}
        for e in listing.visible(app.services)
    ]
    rows += [
        {"model": alias, "mode": "alias", "source": target}
        for alias, target in listing.alias_names(app.services).items()
    ]
    await app.services.upstreams.http.aclose()
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif not rows:
        print("no providers configured: set a <PROVIDER>_API_KEY or OLLAMA_INSTANCES (see docs/settings.md)")
    else:
        width = max(len(r["model"]) for r in rows)
        for row in rows:
            print(f"{row['model']:<{width}}  {row['mode']:<10} {row['source']}")
    return 0


async def export_usage(settings: Settings, fmt: str, since: datetime | None, output: str | None) -> int:
    from app.stores.db import opened
    from app.stores.queries import UsageFilter, export_bytes, take, usage_rows

    try:
        out: BinaryIO = open(output, "wb") if output else sys.stdout.buffer
    except OSError as exc:
        print(f"llm-relay: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return 1
    rows = usage_rows(UsageFilter(since=since))

    async def batches() -> AsyncIterator[list[dict[str, Any]]]:
        while batch := await take(rows, 1000):
            yield batch

    try:
        async with opened(settings.resolved_database_url):
            async for chunk in export_bytes(batches(), fmt):
                out.write(chunk)
    finally:
        await rows.aclose()
        out.flush()
        if output:
            out.close()
    return 0


async def usage_totals(settings: Settings, by: str | None, since: datetime | None, *, as_json: bool) -> int:
    from dataclasses import asdict

    from app.pricing.pricer import NANOS_PER_USD
    from app.stores.db import opened
    from app.stores.totals import totals

    async with opened(settings.resolved_database_url) as database:
        rows = await totals(database.connection, database.backend, by=by, since=since)
    if as_json:
        sys.stdout.write(orjson.dumps([asdict(r) for r in rows], option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    # "unpriced": the requests without a cost (failed ones too), which the cost column leaves out.
    header = ("requests", "errors", "unpriced", "input", "output", "cost USD")
    print(f"{by or 'total':<40} " + " ".join(f"{h:>{w}}" for h, w in zip(header, (9, 7, 8, 12, 12, 15), strict=True)))
    for row in rows:
        cost = "unpriced" if row.cost_nanousd is None else f"{Decimal(row.cost_nanousd) / NANOS_PER_USD:.9f}"
        print(
            f"{row.key[:40]:<40} {row.requests:>9} {row.errors:>7} {row.unpriced_requests:>8} "
            f"{row.input_tokens:>12} {row.output_tokens:>12} {cost:>15}"
        )
    return 0
