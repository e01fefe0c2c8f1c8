"""The floor: the least a Python relay must do per request, to measure LLM Relay against.

aiohttp server and aiohttp client on uvloop, one process. Per request it parses the JSON body,
picks the upstream, asks a streaming upstream for usage, forwards the request on a pooled
keep-alive connection, reads the provider's usage (whole body, or the one SSE event that
carries it), prices it and appends a row to an in-memory ledger. Replies and SSE bytes go back
as the upstream sent them. No database, no tags, no model resolution, no dialect translation:
whatever LLM Relay spends beyond this is its own overhead.

    python bench/floor.py --port 9300 --upstream http://127.0.0.1:9100/v1
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web

RATES = {"prompt_tokens": 150, "completion_tokens": 600}  # nano-dollars per token (gpt-4o-mini)
LEDGER: list[tuple[float, str, int, int, int]] = []


def meter(model: str, usage: dict[str, Any]) -> None:
    cost = sum(int(usage.get(name) or 0) * rate for name, rate in RATES.items())
    LEDGER.append(
        (time.time(), model, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), cost)
    )
    if len(LEDGER) > 100_000:  # a ledger, not a leak: the floor keeps only the recent rows
        del LEDGER[:50_000]


class Floor:
    def __init__(self, upstream: str) -> None:
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def start(self, app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))

    async def stop(self, app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = body.get("model", "")
        stream = bool(body.get("stream"))
        if stream:
            body["stream_options"] = {"include_usage": True}
        assert self.session is not None
        headers = {"content-type": "application/json", "authorization": "Bearer sk-floor"}
        async with self.session.post(self.url, data=orjson.dumps(body), headers=headers) as upstream:
            if not stream or upstream.status >= 400:
                data = await upstream.read()
                if upstream.status < 400:
                    meter(model, orjson.loads(data).get("usage") or {})
                return web.Response(body=data, status=upstream.status, content_type="application/json")
            response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
            await response.prepare(request)
            pending = b""
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)  # bytes go back as they came
                # Only the event that carries usage is parsed; lines may straddle chunks.
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.startswith(b"data: {") and b'"usage":{' in line:
                        meter(model, orjson.loads(line[6:])["usage"])
            await response.write_eof()
            return response


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9300)
    parser.add_argument("--upstream", default="http://127.0.0.1:9100/v1")
    args = parser.parse_args()
    floor = Floor(args.upstream)
    app = web.Application()
    app.on_startup.append(floor.start)
    app.on_cleanup.append(floor.stop)
    app.router.add_post("/v1/chat/completions", floor.chat)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
