"""An OpenAI-compatible upstream that attacks its client, on raw sockets (a broken provider or an
attacker behind a custom base URL). Beside :class:`FaultyUpstream`'s faults, the request's
``model`` picks:

- ``big:<bytes>``: a chat reply of about that size (one long content), ``content-length`` framed
- ``embed:<bytes>``: an embeddings reply of about that size (many vectors)
- ``gzip-bomb``: a gzip-encoded body of zeros that never ends (an SSE stream, or a whole reply)
- ``endless-line``: a stream whose first ``data:`` line never ends
- ``headers:<N>``: a reply with N header lines
- ``endless-header``: a header line that never ends
- ``desync``: the recorded chat reply, then the start of a second response (status 418 and a
  header meant for someone else) on the same kept-alive connection
- ``idle-close``: the recorded chat reply on a connection's first request; on a later request on
  the same connection, the server reads it and closes the connection without a word (a server
  closing an idle connection just as the request goes out)
- ``echo-key``: a 401 whose message repeats the bearer key it was sent; streamed, an error event
  mid-stream that does the same
- ``plain``: the recorded chat reply, or the recorded stream (chunked) on a kept-alive connection

``connections`` counts accepted connections; ``written`` the body bytes sent per model.
"""

from __future__ import annotations

import asyncio
import json
import zlib

from tests.fault_upstream import REPLY, STREAM, FaultyUpstream


class HostileUpstream(FaultyUpstream):
    def __init__(self) -> None:
        self.connections = 0
        # Requests seen per open connection, keyed by its writer: held while the connection is open,
        # so a new connection never inherits a count (as it could from a reused id()).
        self.requests_on: dict[asyncio.StreamWriter, int] = {}
        super().__init__()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.requests_on[writer] = 0
        try:
            await super()._handle(reader, writer)
        finally:
            del self.requests_on[writer]

    async def _answer(self, model: str, writer: asyncio.StreamWriter, body: dict) -> bool:
        self.requests_on[writer] += 1
        kind, _, arg = model.partition(":")
        stream = bool(body.get("stream"))
        if kind == "plain" or (kind == "idle-close" and self.requests_on[writer] == 1):
            self.hits[model] += 1
            if stream:  # chunked, on a connection that stays open
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                )
                for event in STREAM.split(b"\n\n"):
                    piece = event + b"\n\n"
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                await self._send(writer, 200, "application/json", REPLY)
            return True
        if kind == "idle-close":
            self.hits[model] += 1
            return False  # the request was read: close without a word
        if kind == "big":
            reply = json.loads(REPLY)
            reply["choices"][0]["message"]["content"] = "x" * int(arg)
            await self._send(writer, 200, "application/json", json.dumps(reply).encode())
            return True
        if kind == "embed":
            vector = [0.123456789] * 256  # ~3 KB of JSON
            vectors = [{"object": "embedding", "index": i, "embedding": vector} for i in range(1 + int(arg) // 3000)]
            reply = {"object": "list", "data": vectors, "model": "e", "usage": {"prompt_tokens": 3, "total_tokens": 3}}
            await self._send(writer, 200, "application/json", json.dumps(reply).encode())
            return True
        if kind == "gzip-bomb":
            await self._gzip_bomb(model, writer, "text/event-stream" if stream else "application/json")
            return False
        if kind == "endless-line":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: ")
            await self._forever(model, writer, b"a" * 65536)
            return False
        if kind == "headers":
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            head += b"".join(b"x-h%d: v\r\n" % i for i in range(int(arg)))
            writer.write(head + b"content-length: %d\r\n\r\n" % len(REPLY) + REPLY)
            await writer.drain()
            return False
        if kind == "endless-header":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-long: ")
            await self._forever(model, writer, b"a" * 65536)
            return False
        if kind == "desync":
            await self._send(writer, 200, "application/json", REPLY)
            writer.write(b"HTTP/1.1 418 I'm a teapot\r\nx-leak: meant-for-someone-else\r\ncontent-length: 2\r\n")
            await writer.drain()
            return True
        if kind == "echo-key":
            key = _bearer(self.heads[id(writer)])
            message = f"Incorrect API key provided: {key}. You can find your API key at the dashboard ({key})."
            error = {"error": {"message": message, "type": "invalid_request_error", "code": f"invalid_key:{key}"}}
            if stream:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                writer.write(b"\n\n".join(STREAM.split(b"\n\n")[:2]) + b"\n\n")
                writer.write(b"data: " + json.dumps(error).encode() + b"\n\n")
                await writer.drain()
                return False
            await self._send(writer, 401, "application/json", json.dumps(error).encode())
            return True
        return await super()._answer(model, writer, body)

    async def _gzip_bomb(self, model: str, writer: asyncio.StreamWriter, content_type: str) -> None:
        """Zeros, gzip-compressed (a mebibyte of them is about a kilobyte), for as long as the
        client reads."""
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-encoding: gzip\r\n"
            b"transfer-encoding: chunked\r\n\r\n" % content_type.encode()
        )
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
        zeros = bytes(1 << 20)
        for _ in range(1 << 16):  # 64 GiB of zeros at most
            piece = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.sent[model] += len(zeros)
            await writer.drain()

    async def _forever(self, model: str, writer: asyncio.StreamWriter, piece: bytes) -> None:
        for _ in range(1 << 16):  # 4 GiB at most
            writer.write(piece)
            self.sent[model] += len(piece)
            await writer.drain()


def _bearer(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            return value.strip().decode().removeprefix("Bearer ")
    return ""
