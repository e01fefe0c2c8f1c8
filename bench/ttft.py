"""Time to first token through a target, one paced stream at a time.

Stdlib only, one keep-alive connection (HTTP/1.1, chunked replies), so the probe costs the same
against every target. For each request it notes when the first SSE event with content arrives and when the stream ends;
it prints one line ``BENCH {json}`` with the percentiles, in milliseconds.

    python bench/ttft.py http://127.0.0.1:9200/v1/chat/completions --model openai/gpt-4o-mini-paced -n 40
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import time
import urllib.parse


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


CONTENT = re.compile(rb'"content":\s*"[^"]')  # a delta with text (the role chunk's content is "")


def probe(url: str, model: str, count: int, warmup: int, headers: dict[str, str]) -> dict[str, float]:
    """Raw socket and chunked framing read by hand: http.client's line reader waits for the next
    chunk before returning a line, which would add a whole frame interval to every TTFT."""
    target = urllib.parse.urlsplit(url)
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
            "max_tokens": 16,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    head = f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    sock = socket.create_connection((target.hostname, target.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ttft: list[float] = []
    total: list[float] = []
    errors = 0
    for index in range(warmup + count):
        started = time.perf_counter()
        sock.sendall(request)
        received = b""
        first = None
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the end of a chunked body
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the target closed the connection")
            if first is None and CONTENT.search(received[-64:] + data):
                first = time.perf_counter()
            received += data
        ended = time.perf_counter()
        if not received.startswith(b"HTTP/1.1 200") or first is None:
            errors += 1
            continue
        if index >= warmup:
            ttft.append((first - started) * 1000)
            total.append((ended - started) * 1000)
    sock.close()
    return {
        "n": len(ttft),
        "errors": errors,
        "ttft_p50_ms": round(percentile(ttft, 50), 3),
        "ttft_p99_ms": round(percentile(ttft, 99), 3),
        "total_p50_ms": round(percentile(total, 50), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--model", default="gpt-4o-mini-paced")
    parser.add_argument("-n", type=int, default=40, help="measured requests")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    args = parser.parse_args()
    headers = dict((part.strip() for part in h.split(":", 1)) for h in args.header)  # type: ignore[misc]
    print("BENCH " + json.dumps(probe(args.url, args.model, args.n, args.warmup, headers)), flush=True)


if __name__ == "__main__":
    main()
