"""What one upstream request costs the relay's process in CPU, per HTTP client: the evidence
behind the relay's upstream calls on aiohttp (app/adapters/client.py). 32 concurrent POSTs to the
bench upstream, CPU time per request (process time, so other load on the machine matters less
than for req/s).

    python -m bench.clients            # starts its own upstream on core 1, runs on core 0

httpx's own pool (default and with other limits), httpx on the ``httpx-aiohttp`` transport (if
that package is installed: ``pip install httpx-aiohttp==0.2.0``), and aiohttp alone, as the relay
calls providers. (Until 2026-12-06 it also measured httpx on the relay's own aiohttp transport,
app/adapters/transport.py, gone with 9b29a57.)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import orjson
import uvloop

from bench.targets import HERE, free_port

BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
REQUESTS, CONCURRENCY = 4000, 32


async def cost(name: str, one: Callable[[], Awaitable[None]]) -> None:
    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    await worker(200)  # connections opened, caches warm
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(REQUESTS // CONCURRENCY) for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{name:44} {cpu / REQUESTS * 1e6:7.0f} us CPU/request  {REQUESTS / wall:7.0f} req/s", flush=True)


async def main(url: str) -> None:
    timeout = httpx.Timeout(30.0)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)
    clients: list[tuple[str, httpx.AsyncClient]] = [
        ("httpx, its own pool (1000/200, the old default)", httpx.AsyncClient(timeout=timeout, limits=limits)),
        (
            "httpx, its own pool (100/100)",
            httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)),
        ),
    ]
    try:
        from httpx_aiohttp import AiohttpTransport  # type: ignore[import-not-found]

        transport = AiohttpTransport(limits=limits)
        clients.append(("httpx on httpx-aiohttp 0.2.0", httpx.AsyncClient(timeout=timeout, transport=transport)))
    except ImportError:
        print("httpx-aiohttp is not installed: skipped")
    for name, client in clients:

        async def via_httpx(client: httpx.AsyncClient = client) -> None:
            orjson.loads((await client.post(url, content=BODY, headers=HEADERS)).content)

        await cost(name, via_httpx)

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))

    async def direct() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as reply:
            orjson.loads(await reply.read())

    await cost("aiohttp alone (as the relay calls providers)", direct)
    for _, client in clients:
        await client.aclose()
    await session.close()
    await asyncio.sleep(0.1)  # let aiohttp's transports close


if __name__ == "__main__":
    port = free_port()
    upstream = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, str(HERE / "upstream.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        os.sched_setaffinity(0, {0})
        uvloop.run(main(f"http://127.0.0.1:{port}/v1/chat/completions"))
    finally:
        upstream.terminate()
        upstream.wait(10)
