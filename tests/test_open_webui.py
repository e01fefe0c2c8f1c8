"""The README's Open WebUI set-up, as Open WebUI uses it: the pipeline file the README shows
tags each request by the user headers Open WebUI forwards, on its OpenAI connection (beside the
connection key's tag) and on its Ollama connection (which sends no key)."""

from __future__ import annotations

import re
import textwrap
import uuid
from pathlib import Path

import httpx

from tests.test_stage_spend_limit import MESSAGES

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_pipeline_file(tmp_path: Path) -> str:
    """The TOML block of the README's Open WebUI section, written to a file."""
    section = README.read_text().split("### Open WebUI", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "the README's Open WebUI section shows no pipeline file"
    path = tmp_path / "open-webui.toml"
    path.write_text(textwrap.dedent(block.group(1)))
    return str(path)


def open_webui_headers(email: str) -> dict[str, str]:
    """What Open WebUI sends with ENABLE_FORWARD_USER_INFO_HEADERS (its name percent-encoded, spaces kept)."""
    return {
        "X-OpenWebUI-User-Name": "Alice Sm%C3%ADth",
        "X-OpenWebUI-User-Id": str(uuid.uuid4()),
        "X-OpenWebUI-User-Email": email,
        "X-OpenWebUI-User-Role": "user",
    }


def test_open_webui_users_are_tags_on_both_connections(make_relay, tmp_path) -> None:
    relay = make_relay(pipeline_file=readme_pipeline_file(tmp_path))
    email = f"alice-{uuid.uuid4().hex[:8]}@example.com"
    headers = open_webui_headers(email)
    openai_connection = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "openai/chat_nonstream_basic", "messages": MESSAGES},
        headers={**headers, "Authorization": "Bearer webui"},
    )
    ollama_connection = httpx.post(
        relay.url + "/api/chat",
        json={"model": "openai/chat_nonstream_basic", "messages": MESSAGES, "stream": False},
        headers=headers,
    )
    assert openai_connection.status_code == 200 and ollama_connection.status_code == 200
    assert relay.row(openai_connection.headers["x-request-id"])["tags"] == ["webui", f"user:{email}", "role:user"]
    assert relay.row(ollama_connection.headers["x-request-id"])["tags"] == [f"user:{email}", "role:user"]
