"""Claude Code itself (npm ``@anthropic-ai/claude-code``, pinned in tests/agents/package.json)
completes a prompt through the relay, in print mode with JSON output, against an emulated
Anthropic upstream (its own events relayed) and an OpenAI-compatible one (translated)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.recordings import expected_stream
from tests.test_anthropic import _streamed_message

AGENTS = Path(__file__).parent / "agents"
CLAUDE = AGENTS / "node_modules" / ".bin" / "claude"


def install_agents(binary: Path) -> None:
    """The pinned agents of tests/agents, installed from the lock file on first use."""
    if not binary.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install the agents the tests drive (tests/agents)"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=AGENTS, check=True, timeout=600)


@pytest.fixture(scope="session")
def claude() -> Path:
    install_agents(CLAUDE)
    return CLAUDE


def run_claude(claude: Path, relay_url: str, model: str, key: str, home: Path) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": relay_url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "CI": "1",
    }
    argv = [str(claude), "-p", "Say hi.", "--output-format", "json", "--model", model, "--max-turns", "1"]
    return json.loads(run_agent(argv, env, home))  # type: ignore[no-any-return]


def run_agent(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """An agent's standard output; its output and errors are the message when it fails."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{argv[0]} failed ({done.returncode}): {done.stdout[-3000:]} {done.stderr[-3000:]}"
    return done.stdout


def _recorded_text(model: str) -> str:
    provider, name = model.split("/", 1)
    if provider == "anthropic":
        blocks, _ = _streamed_message(name)
        return "".join(b.get("text", "") for b in blocks if b["type"] == "text")
    return expected_stream(provider, name).text


@pytest.mark.parametrize("model", ["anthropic/messages_stream_text_simple", "openai/chat_stream_text_short"])
def test_claude_code_completes_a_prompt(relay, upstream, claude, tmp_path, model: str) -> None:
    tag = f"cc-{uuid.uuid4().hex[:10]}"
    result = run_claude(claude, relay.url, model, tag, tmp_path)
    assert result["type"] == "result" and result["is_error"] is False, result
    assert result["result"].strip() == _recorded_text(model).strip()
    rows = relay.rows(tag=tag)  # the tag is Claude Code's API key
    assert rows and all(row["dialect"] == "anthropic" and row["outcome"] == "ok" for row in rows)
    assert {row["resolved_model"] for row in rows} == {model}
    provider, name = model.split("/", 1)
    sent = upstream.last("/anthropic/v1/messages" if provider == "anthropic" else "/openai/v1/chat")
    assert sent.body["model"] == name
    if provider == "anthropic":  # Claude Code's own body and beta flags, passed on
        assert "claude-code-20250219" in sent.headers["anthropic-beta"]
        assert sent.body["tools"] and "cache_control" in str(sent.body["system"])
    else:  # its tools translated into function tools
        assert {t["function"]["name"] for t in sent.body["tools"]} >= {"Bash", "Read", "Edit"}
