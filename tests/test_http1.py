"""The relay's HTTP/1.1 client (app/adapters/http1.py) against real sockets: servers written
here on raw asyncio streams, so each can misbehave the way a provider or a proxy in front of one
does (close early, stall, gzip, chunk, send garbage)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from app.adapters.http1 import Pool
from app.adapters.http1_request import request_head, split_url
from app.adapters.transport import UpstreamClient

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]  # False: close the connection


class Server:
    """Answers each request on a connection with ``handler(request head, writer)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl())
        return self

    def ssl(self) -> ssl.SSLContext | None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                lines = head.lower().split(b"\r\n")
                length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                if not await self.handler(head, reader, writer):
                    return
        except ConnectionError:
            pass
        finally:
            writer.close()


def pool(**limits: float) -> Pool:
    return Pool(httpx.Timeout(2.0), httpx.Limits(max_connections=int(limits.get("max_connections", 10)),
                keepalive_expiry=limits.get("keepalive_expiry", 60)))  # fmt: skip


def reply(body: bytes = b'{"ok": true}', *extra: str) -> bytes:
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + "".join(f"{h}\r\n" for h in extra)
    return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body


async def ok(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(reply())
    return True


def run(coroutine: Awaitable[None]) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


def test_connections_are_kept_and_reused() -> None:
    async def scenario() -> None:
        client = pool()
        async with Server(ok) as server:
            for _ in range(5):
                answer = await client.request("POST", server.url + "/v1/chat", {"x-key": "1"}, b"{}")
                assert answer.status == 200 and await answer.read() == b'{"ok": true}'
            assert server.connections == 1
            replies = await asyncio.gather(
                *(client.request("POST", server.url + "/v1/chat", {}, b"{}") for _ in range(4))
            )
            assert [await r.read() for r in replies] == [b'{"ok": true}'] * 4
            assert server.connections == 4  # three more while one was busy each
            await client.request("GET", server.url + "/v1/models", {})
            assert server.connections == 4
            await client.aclose()

    run(scenario())


def test_the_request_is_written_as_given_with_what_http_needs() -> None:
    async def scenario() -> None:
        client = pool()
        async with Server(ok) as server:
            answer = await client.request(
                "POST", server.url + "/v1/chat?x=1", {"Authorization": "Bearer k"}, b'{"a":1}'
            )
            await answer.read()
            sent = server.requests[0].decode()
            port = server.url.rsplit(":", 1)[1]
            assert sent.startswith("POST /v1/chat?x=1 HTTP/1.1\r\n")
            assert f"host: 127.0.0.1:{port}\r\n" in sent and "content-length: 7\r\n" in sent
            assert "Authorization: Bearer k\r\n" in sent and sent.endswith('\r\n\r\n{"a":1}')
            await client.aclose()

    run(scenario())


def test_a_line_break_in_a_header_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(httpx.LocalProtocolError):
        request_head("POST", "/v1", "h", {"authorization": "Bearer k\r\nx-injected: 1"}, b"", True)
    with pytest.raises(httpx.LocalProtocolError):
        request_head("POST", "/v1", "h", {"authorization": "Bearer k\n"}, b"", True)


def test_urls() -> None:
    assert split_url("https://api.example.com/v1/chat") == (
        ("https", "api.example.com", 443),
        "api.example.com",
        "/v1/chat",
    )
    assert split_url("http://[::1]:8080") == (("http", "::1", 8080), "[::1]:8080", "/")
    with pytest.raises(httpx.UnsupportedProtocol):
        split_url("ftp://example.com/")


def test_connection_close_chunked_and_end_of_connection_bodies() -> None:
    async def answer(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        path = head.split(b" ")[1]
        if path == b"/close":
            writer.write(reply(b"closing", "connection: close"))
            return False
        if path == b"/hints":  # an informational reply first (103 Early Hints), then the reply proper
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n" + reply(b"hinted"))
            return True
        if path == b"/twice":  # two replies to one request, in one write
            writer.write(reply(b"first") + reply(b"second"))
            return True
        if path == b"/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            return True
        writer.write(
            b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"
        )  # no length: ends with the connection
        await writer.drain()
        return False

    async def scenario() -> None:
        client = pool()
        async with Server(answer) as server:
            assert await (await client.request("GET", server.url + "/close", {})).read() == b"closing"
            assert await (await client.request("GET", server.url + "/chunked", {})).read() == b"hello world"
            assert await (await client.request("GET", server.url + "/chunked", {})).read() == b"hello world"
            assert server.connections == 2  # the closed one was not reused; the chunked one was
            twice = await client.request("GET", server.url + "/twice", {})
            assert await twice.read() == b"first"  # the unasked second reply neither spoils it...
            await (await client.request("GET", server.url + "/chunked", {})).read()
            assert server.connections == 3  # ...nor is its connection used again
            hinted = await client.request("GET", server.url + "/hints", {})
            assert hinted.status == 200 and await hinted.read() == b"hinted"
            assert await (await client.request("GET", server.url + "/eof", {})).read() == b"until the end"
            await client.aclose()

    run(scenario())


def test_gzip_is_decoded_here_or_left_to_httpx() -> None:
    body = b'{"choices": []}' * 50

    async def compressed(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        assert b"accept-encoding: gzip" in head.lower()
        writer.write(reply(gzip.compress(body), "content-encoding: gzip"))
        return True

    async def scenario() -> None:
        client = pool()
        async with Server(compressed) as server:
            assert await (await client.request("POST", server.url + "/v1", {}, b"{}")).read() == body
            upstream = UpstreamClient(timeout=httpx.Timeout(2.0), limits=httpx.Limits(max_connections=4))
            response = await upstream.post(server.url + "/v1", content=b"{}")  # through httpx's API
            assert response.content == body
            await upstream.aclose()
            await client.aclose()

    run(scenario())


def test_broken_replies_are_protocol_errors() -> None:
    async def broken(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if b"/garbage" in head:
            writer.write(b"SMTP ready\r\n\r\n")
        else:  # promises 100 bytes, sends 5, hangs up
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")
        await writer.drain()
        return False

    async def scenario() -> None:
        client = pool()
        async with Server(broken) as server:
            url = server.url
            with pytest.raises(httpx.RemoteProtocolError):
                await (await client.request("GET", url + "/garbage", {})).read()
            with pytest.raises(httpx.RemoteProtocolError):
                await (await client.request("GET", url + "/short", {})).read()
        with pytest.raises(httpx.ConnectError):
            await client.request("GET", url + "/gone", {})  # the server is closed: refused
        await client.aclose()

    run(scenario())


def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await asyncio.sleep(5)
        return False

    async def scenario() -> None:
        client = Pool(httpx.Timeout(2.0, read=0.3), httpx.Limits())
        async with Server(silent) as server:
            started = asyncio.get_running_loop().time()
            answer = await client.request("GET", server.url + "/", {})
            chunks = []
            with pytest.raises(httpx.ReadTimeout):
                async for chunk in answer.iter_chunks():
                    chunks.append(chunk)
            assert chunks == [b"first"] and 0.29 < asyncio.get_running_loop().time() - started < 1.5
            await client.aclose()

    run(scenario())


def test_leaving_a_stream_early_closes_its_connection_and_its_end_keeps_it() -> None:
    release = asyncio.Event()
    left: list[bytes] = []

    async def stream(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"e\r\ndata: [DONE]\n\n\r\n")
        await writer.drain()
        if b"/early" in head:
            if await reader.read(1) == b"":
                left.append(head)
            return False
        await release.wait()  # the end of the chunked body comes later, as it often does
        writer.write(b"0\r\n\r\n")
        return True

    async def scenario() -> None:
        client = pool()
        async with Server(stream) as server:
            answer = await client.request("POST", server.url + "/early", {}, b"{}")
            chunks = answer.iter_chunks()
            await anext(chunks)
            await chunks.aclose()  # the relay's client went away
            await asyncio.sleep(0.05)
            assert len(left) == 1  # the provider sees the connection close and stops generating

            answer = await client.request("POST", server.url + "/v1", {}, b"{}")
            chunks = answer.iter_chunks()
            assert await anext(chunks) == b"data: [DONE]\n\n"
            answer.release_at_end()
            await chunks.aclose()
            release.set()
            await asyncio.sleep(0.05)
            await (await client.request("POST", server.url + "/v1", {}, b"{}")).iter_chunks().aclose()
            assert server.connections == 2  # the drained connection served the third request
            await client.aclose()

    run(scenario())


def test_the_pool_waits_for_a_free_connection_and_gives_up_in_time() -> None:
    gate = asyncio.Event()

    async def slow(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await gate.wait()
        writer.write(reply())
        return True

    async def scenario() -> None:
        client = Pool(httpx.Timeout(2.0, pool=0.2), httpx.Limits(max_connections=2))
        async with Server(slow) as server:
            busy = [asyncio.ensure_future(client.request("GET", server.url + "/", {})) for _ in range(2)]
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await client.request("GET", server.url + "/", {})
            third = asyncio.ensure_future(client.request("GET", server.url + "/", {}))
            gate.set()
            for answer in await asyncio.gather(*busy):
                assert await answer.read() == b'{"ok": true}'  # each back to the pool: the third takes one
            assert await (await third).read() == b'{"ok": true}'
            assert server.connections == 2
            await client.aclose()

    run(scenario())


def test_idle_connections_expire_and_ones_the_server_closed_are_not_used() -> None:
    async def then_hang_up(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(reply())  # keep-alive by default, then closed at once, as at an idle timeout
        return False

    async def scenario() -> None:
        client = pool(keepalive_expiry=0.1)
        async with Server(ok) as server:
            await (await client.request("GET", server.url + "/", {})).read()
            await asyncio.sleep(0.2)
            await (await client.request("GET", server.url + "/", {})).read()
            assert server.connections == 2
        await client.aclose()
        client = pool()
        async with Server(then_hang_up) as server:
            for _ in range(3):
                assert await (await client.request("GET", server.url + "/", {})).read() == b'{"ok": true}'
                await asyncio.sleep(0.05)
            assert server.connections == 3 and len(client._open) == 0
        await client.aclose()

    run(scenario())


def _certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_https_is_verified(tmp_path: Path) -> None:
    key, cert = _certificate(tmp_path)

    class TLSServer(Server):
        def ssl(self) -> ssl.SSLContext:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            return context

    async def scenario() -> None:
        async with TLSServer(ok) as server:
            url = server.url.replace("http://", "https://") + "/v1"
            trusting = Pool(httpx.Timeout(2.0), httpx.Limits(), ssl.create_default_context(cafile=str(cert)))
            answer = await trusting.request("POST", url, {}, b"{}")
            assert answer.status == 200 and await answer.read() == b'{"ok": true}'
            await trusting.aclose()
            default = pool()  # the system's CAs: a self-signed certificate is refused
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await default.request("POST", url, {}, b"{}")
            await default.aclose()

    run(scenario())


def test_a_request_can_be_sent_to_a_checked_address_on_a_connection_of_its_own() -> None:
    async def scenario() -> None:
        client = pool()
        async with Server(ok) as server:
            port = server.url.rsplit(":", 1)[1]
            for _ in range(2):
                url = f"http://image.test:{port}/cat.png"  # a name that resolves nowhere
                answer = await client.request("GET", url, {}, connect_to="127.0.0.1")
                assert await answer.read() == b'{"ok": true}'
            assert f"host: image.test:{port}\r\n" in server.requests[0].decode()
            assert server.connections == 2  # not kept for another request to that host
            await client.aclose()

    run(scenario())
