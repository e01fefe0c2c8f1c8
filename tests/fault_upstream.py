"""A deliberately faulty OpenAI-compatible upstream, on raw sockets so it can do what a
well-behaved server framework won't: stall, reset the connection, fail mid-stream.

The request's ``model`` picks the fault:
- ``status:<N>``: HTTP N with an OpenAI error object (the spec's ErrorResponse), ``Retry-After: 0``
- ``flaky:<N>``: 503 for the first N requests of that model, then the recorded chat reply
- ``stall``: reads the request and never answers
- ``reset``: reads the request and resets the connection
- ``midstream-error``: a recorded stream's first events, then Groq's in-band error event
  (``event: error`` with the recorded Groq error object), without [DONE]
- ``midstream-reset``: a recorded stream's first events, then a reset
- ``midstream-stall``: a recorded stream's first events, then silence
- ``midstream-done``: a recorded stream's first events, then [DONE] with no finish reason ever
  sent, as llama-cpp-python's server ends a stream it stops for another request
- ``empty-stream``: a 200 event stream that ends before any event, as llama-cpp-python's server
  answers a streamed prompt too long for its context
- ``firehose:<MB>``: a stream of that many megabytes of 8 KB content chunks written as fast as
  the connection takes them (``sent`` counts the bytes), then a finish, usage and [DONE]; the
  chunks have the shape of the recorded stream's
- ``absurd-usage``: the recorded chat reply with a usage no provider could mean: counts past
  64 bits' signed range and a provider cost of 1e300 dollars
- ``ignores-stream:<provider>/<recording>``: that recorded JSON reply, even when the request asked
  for a stream (as some OpenAI-compatible servers answer)
- ``context-length``: a 400 refusing the prompt as too long for the model: the spec's
  ErrorResponse with the ``context_length_exceeded`` code OpenAI documents (not a recording)
- ``no-usage``: the recorded stream (or reply) with its usage taken out, as llama.cpp and some
  compatible servers answer even when asked for usage
- ``token-embeddings``: an embedding list whose each embedding is a vector per token, as
  llama-cpp-python's server answers without pooling
- ``usage-echo``: the recorded chat reply (or, for ``"stream": true``, the recorded stream) with
  its usage block replaced by the JSON text of the request's first message
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import threading
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
REPLY = (FIXTURES / "openai" / "chat_nonstream_basic.json").read_bytes()
STREAM = (FIXTURES / "openai" / "chat_stream_text_short.sse").read_bytes()
GROQ_ERROR = json.loads((FIXTURES / "groq" / "error_400_tool_use_failed.json").read_text())


class FaultyUpstream:
    def __init__(self) -> None:
        self.hits: collections.Counter[str] = collections.Counter()
        self.sent: collections.Counter[str] = collections.Counter()
        self.events: collections.Counter[str] = collections.Counter()
        self.heads: dict[int, bytes] = {}  # the head of the request each connection is answering
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.AbstractServer | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(5)
        assert self.server is not None
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:  # stalled handlers
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = json.loads(await reader.readexactly(length)) if length else {}
                self.heads[id(writer)] = head
                if not await self._answer(str(body.get("model", "")), writer, body):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, model: str, writer: asyncio.StreamWriter, body: dict) -> bool:
        """Answer one request; False when the connection must not be used again."""
        self.hits[model] += 1
        kind, _, arg = model.partition(":")
        if kind == "status" or (kind == "flaky" and self.hits[model] <= int(arg.split("-")[0])):
            status = int(arg) if kind == "status" else 503
            error = {"error": {"message": f"emulated {status}", "type": "server_error", "param": None, "code": None}}
            await self._send(writer, status, "application/json", json.dumps(error).encode(), {"Retry-After": "0"})
            return True
        if kind == "flaky":
            await self._send(writer, 200, "application/json", REPLY)
            return True
        canned = _canned(kind, arg, body)
        if canned is not None:  # a reply made whole from the recordings
            await self._send(writer, *canned)
            return True
        if kind == "stall":
            await asyncio.sleep(3600)
            return False
        if kind == "reset":
            _reset(writer)
            return False
        if kind == "firehose":
            await self._firehose(model, int(arg.split("-")[0]) * 1024 * 1024, writer)
            return False
        if kind == "empty-stream":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            await writer.drain()
            return False
        if kind.startswith("midstream-"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            writer.write(b"\n\n".join(STREAM.split(b"\n\n")[:3]) + b"\n\n")
            await writer.drain()
            if kind == "midstream-error":
                writer.write(b"event: error\ndata: " + json.dumps(GROQ_ERROR).encode() + b"\n\n")
                await writer.drain()
            elif kind == "midstream-reset":
                _reset(writer)
            elif kind == "midstream-done":
                writer.write(b"data: [DONE]\n\n")
                await writer.drain()
            else:
                await asyncio.sleep(3600)
            return False
        await self._send(writer, 404, "application/json", b'{"error": {"message": "unknown fault"}}')
        return True

    async def _firehose(self, model: str, size: int, writer: asyncio.StreamWriter) -> None:
        first = json.loads(STREAM.split(b"\n\n")[1].removeprefix(b"data: "))  # a recorded content chunk
        first["choices"][0]["delta"] = {"content": "x" * 8192}
        event = b"data: " + json.dumps(first).encode() + b"\n\n"
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        pieces = 0
        while self.sent[model] < size:
            writer.write(event)
            await writer.drain()  # waits while the relay does not read: that is the point
            self.sent[model] += len(event)
            self.events[model] += 1
            pieces += 1
        first["choices"][0].update(delta={}, finish_reason="stop")
        usage = {
            **first,
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": pieces, "total_tokens": 5 + pieces},
        }
        for last in (first, usage):
            writer.write(b"data: " + json.dumps(last).encode() + b"\n\n")
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()

    async def _send(self, writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes,
                    headers: dict[str, str] | None = None) -> None:  # fmt: skip
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
        writer.write(head.encode() + body)
        await writer.drain()


def _canned(kind: str, arg: str, body: dict) -> tuple[int, str, bytes] | None:
    """The status, content type and body of the faults answered in one piece."""
    stream = bool(body.get("stream"))
    reply = json.loads(REPLY)
    if kind == "absurd-usage":
        reply["usage"].update(prompt_tokens=2**64 - 1, completion_tokens=2**63, total_tokens=2**64 - 1, cost=1e300)
    elif kind == "usage-echo":
        usage = json.loads(body["messages"][0]["content"])
        if stream:
            return 200, "text/event-stream", _stream_with_usage(usage)
        reply["usage"] = usage
    elif kind == "context-length":
        message = "This model's maximum context length is 8192 tokens. Please reduce the length of the messages."
        error = {"message": message, "type": "invalid_request_error", "param": "messages"}
        return 400, "application/json", json.dumps({"error": {**error, "code": "context_length_exceeded"}}).encode()
    elif kind == "ignores-stream":
        return 200, "application/json", (FIXTURES / f"{arg}.json").read_bytes()
    elif kind == "token-embeddings":
        vectors = [[0.5, -0.25], [0.125, 1.0]]  # two tokens of a two-dimensional model
        usage = {"prompt_tokens": 2, "total_tokens": 2}
        data = [{"object": "embedding", "embedding": vectors, "index": 0}]
        return (
            200,
            "application/json",
            json.dumps({"object": "list", "data": data, "model": kind, "usage": usage}).encode(),
        )
    elif kind == "no-usage":
        if stream:
            return 200, "text/event-stream", b"\n\n".join(e for e in STREAM.split(b"\n\n") if b'"usage":{' not in e)
        del reply["usage"]
    else:
        return None
    return 200, "application/json", json.dumps(reply).encode()


def _stream_with_usage(usage: object) -> bytes:
    events = []
    for event in STREAM.split(b"\n\n"):
        if event.startswith(b"data: {") and b'"usage":{' in event:
            chunk = json.loads(event[6:])
            chunk["usage"] = usage
            event = b"data: " + json.dumps(chunk).encode()
        events.append(event)
    return b"\n\n".join(events)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed server or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()
