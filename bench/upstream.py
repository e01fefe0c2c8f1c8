"""An emulated OpenAI-compatible upstream for the bench: fast enough never to be the bottleneck.

A raw asyncio protocol on uvloop (no framework, no per-request task): ``POST .../chat/completions``
answers a chat completion with a ``usage`` block, or, with ``"stream": true``, an SSE stream
(role chunk, ``--chunks`` content chunks, a finish chunk, a usage chunk when
``stream_options.include_usage`` asks for it, like OpenAI, then ``[DONE]``). A model whose name ends
in ``-paced`` is streamed one frame every ``--interval`` ms; any other model at once.
``GET .../models`` lists the models, ``GET /health`` says ok. Binds 127.0.0.1 only.

    python bench/upstream.py --port 9100 --interval 10 --chunks 8
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from typing import Any, cast

import orjson

try:
    import uvloop
except ImportError:  # pragma: no cover - the relay's own dependencies include it
    uvloop = None  # type: ignore[assignment]

_ids = itertools.count(1)
MODELS = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "bench"}
            for m in ("gpt-4o-mini", "gpt-4o-mini-paced")
        ],
    }
)
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 9,
    "total_tokens": 21,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def completion(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": f"chatcmpl-bench{next(_ids)}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello! This is a fixed bench reply.", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def frames(model: str, chunks: int, include_usage: bool) -> list[bytes]:
    """The SSE frames of one stream, each already framed as an HTTP/1.1 chunk."""
    head = {"id": f"chatcmpl-bench{next(_ids)}", "object": "chat.completion.chunk", "created": 1700000000}
    head |= {"model": model, "system_fingerprint": "fp_bench"}

    def choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    events: list[Any] = [choice({"role": "assistant", "content": ""}, None)]
    events += [choice({"content": f"tok{i} "}, None) for i in range(chunks)]
    events.append(choice({}, "stop"))
    if include_usage:
        events.append({**head, "choices": [], "usage": {**USAGE, "completion_tokens": chunks}})
    out = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events]
    out.append(b"data: [DONE]\n\n")
    return [b"%x\r\n%s\r\n" % (len(f), f) for f in out]


class Upstream(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, Content-Length or chunked request bodies."""

    def __init__(self, interval: float, chunks: int) -> None:
        self.interval = interval
        self.chunks = chunks
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a paced stream is being written; requests wait in the buffer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.busy and self.transport is not None:
            request = self._take_request()
            if request is None:
                return
            self._handle(*request)

    def _take_request(self) -> tuple[str, str, bytes] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].decode("latin-1")
        lines = head.split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parsed = _dechunk(self.buffer, start)
            if parsed is None:
                return None
            body, start = parsed
        else:
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < start + length:
                return None
            body, start = self.buffer[start : start + length], start + length
        self.buffer = self.buffer[start:]
        return method, path.split("?", 1)[0], body

    def _handle(self, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path.endswith("/chat/completions"):
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._reply(400, b'{"error":{"message":"bad json"}}')
                return
            model = str(request.get("model") or "gpt-4o-mini")
            if not request.get("stream"):
                self._reply(200, completion(model))
                return
            options = request.get("stream_options") or {}
            self._stream(frames(model, self.chunks, options.get("include_usage") is True), model.endswith("-paced"))
        elif method == "GET" and path.endswith("/models"):
            self._reply(200, MODELS)
        elif method == "GET" and path == "/health":
            self._reply(200, b'{"status":"ok"}')
        else:
            self._reply(404, b'{"error":{"message":"not found"}}')

    def _reply(self, status: int, payload: bytes) -> None:
        assert self.transport is not None
        head = b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % (status, len(payload))
        self.transport.write(head + payload)

    def _stream(self, chunks: list[bytes], paced: bool) -> None:
        assert self.transport is not None
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        head += b"transfer-encoding: chunked\r\n\r\n"
        if not paced or self.interval <= 0:
            self.transport.write(head + b"".join(chunks) + b"0\r\n\r\n")
            return
        self.transport.write(head)
        self.busy = True
        loop = asyncio.get_running_loop()
        # The end of the body goes with [DONE], as real providers send it: a client that stops
        # reading at [DONE] then finds the response complete and can reuse the connection.
        pending = [*chunks[:-1], chunks[-1] + b"0\r\n\r\n"]
        pending.reverse()

        def tick() -> None:
            if self.transport is None:
                return  # the client left; drop the rest
            self.transport.write(pending.pop())
            if pending:
                loop.call_later(self.interval, tick)
            else:
                self.busy = False
                self.data_received(b"")  # serve a request that arrived meanwhile

        tick()


def _dechunk(buffer: bytes, start: int) -> tuple[bytes, int] | None:
    body = b""
    while True:
        line_end = buffer.find(b"\r\n", start)
        if line_end < 0:
            return None
        size = int(buffer[start:line_end].split(b";", 1)[0], 16)
        start = line_end + 2
        if len(buffer) < start + size + 2:
            return None
        body += buffer[start : start + size]
        start += size + 2
        if size == 0:
            return body, start


async def serve(port: int, interval: float, chunks: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Upstream(interval, chunks), "127.0.0.1", port, backlog=4096)
    print(f"bench upstream on http://127.0.0.1:{port} interval={interval * 1000:.0f}ms chunks={chunks}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--interval", type=float, default=10.0, help="ms between frames of a paced stream")
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per stream")
    args = parser.parse_args()
    run = uvloop.run if uvloop is not None else asyncio.run
    try:
        run(serve(args.port, args.interval / 1000, args.chunks))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
