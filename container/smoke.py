"""Smoke test run inside the image by container/check.sh (standard library only).

Starts an emulated OpenAI upstream replaying a recorded response, starts ``llm-relay serve``
on SQLite in /data, checks /health, relays one chat request, stops the relay with SIGTERM
(it must drain its usage buffer) and finds the usage row with ``llm-relay usage export``.
"""

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request

RECORDING = open("/fixture.json", "rb").read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(RECORDING)))
        self.end_headers()
        self.wfile.write(RECORDING)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port, admin = free_port(), free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ADMIN_PORT": str(admin),
        "ADMIN_PASSWORD": "container smoke test",
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream.server_port}/v1",
    }
    relay = subprocess.Popen(["llm-relay", "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            health = json.load(urllib.request.urlopen(base + "/health", timeout=1))
            break
        except OSError:
            time.sleep(0.2)
    else:
        raise SystemExit("the relay did not answer /health")
    assert health["status"] == "ok", health
    body = json.dumps({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(base + "/v1/chat/completions", body, {"content-type": "application/json"})
    reply = json.load(urllib.request.urlopen(request, timeout=10))
    assert reply["usage"]["prompt_tokens"] == 16, reply
    relay.send_signal(signal.SIGTERM)
    relay.wait(timeout=30)
    rows = json.loads(subprocess.check_output(["llm-relay", "usage", "export", "--format", "json"], env=env))
    assert len(rows) == 1 and rows[0]["input_tokens"] == 16 and rows[0]["output_tokens"] == 363, rows
    cost = rows[0]["cost_nanousd"]
    print(f"smoke test passed: health ok, one request relayed, its row written (cost {cost} nano-USD)")


if __name__ == "__main__":
    main()
