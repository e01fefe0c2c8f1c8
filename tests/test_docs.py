"""The docs stay true to the code: every setting and every built-in stage is documented."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from app.pipeline.loader import BUILTIN
from app.settings import DEFAULT_STAGES, Settings
from scripts.gen_settings_doc import render, render_env

ROOT = Path(__file__).resolve().parent.parent


def test_settings_reference_is_generated_from_the_code() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == render(), "run scripts/gen_settings_doc.py"


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    assert text == render_env(), "run scripts/gen_settings_doc.py"
    for f in fields(Settings):
        if not f.metadata["env"].startswith("<"):
            assert f"# {f.metadata['env']}=" in text, f.metadata["env"]


def test_every_setting_has_a_meaning() -> None:
    for f in fields(Settings):
        assert f.metadata.get("env") and len(f.metadata.get("doc", "")) > 10, f.name


def test_every_builtin_stage_is_documented() -> None:
    text = (ROOT / "docs" / "pipeline.md").read_text()
    documented = set(re.findall(r"^### (\w+)$", text, re.M))
    assert documented == set(BUILTIN)
    assert set(DEFAULT_STAGES) <= set(BUILTIN)


def test_builtin_stages_are_registered_as_entry_points() -> None:
    from importlib.metadata import entry_points

    points = entry_points(group="llm_relay.stages")
    registered = {ep.name: ep.value for ep in points if ep.dist is not None and ep.dist.name == "llm-relay"}
    assert registered == BUILTIN


def test_readme_names_the_ci_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/tox" in readme and ".venv/bin/tox" in ci


def test_every_cli_command_is_in_the_readme() -> None:
    from app.cli import parser

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    for command, sub in _subcommands(parser()).items():
        assert f"llm-relay {command}" in section, f"the README's Command line section lacks {command!r}"
        for name in _subcommands(sub):
            assert re.search(rf"llm-relay {command} [\w|-]*\b{name}\b", section), f"{command} {name}"


def _subcommands(command: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_cli_help_mentions_the_settings_reference() -> None:
    out = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True, check=True).stdout
    assert "docs/settings.md" in out


def test_the_public_stage_api_is_documented() -> None:
    import app.pipeline

    text = (ROOT / "docs" / "stages.md").read_text()
    missing = [name for name in app.pipeline.__all__ if f"`{name}`" not in text]
    assert not missing, f"docs/stages.md does not describe {missing}"


def test_every_stage_hook_is_documented_and_read_through_the_spec() -> None:
    from app.pipeline.hookspecs import HOOKS, StageHooks

    text = (ROOT / "docs" / "stages.md").read_text()
    assert set(HOOKS) == {"passthrough_safe", "terminal", "start", "stop", "status"}
    for name in HOOKS:
        assert f"`{name}`" in text, f"docs/stages.md does not describe the stage hook {name!r}"
        assert (getattr(StageHooks, name).__doc__ or "").strip() or name in StageHooks.__annotations__
    # Anything that reads a hook by name goes through hook(): a getattr here would let an
    # undocumented member in.
    pattern = re.compile(r"getattr\(\w+, \"(" + "|".join(HOOKS) + r")\"")
    for path in (ROOT / "app").rglob("*.py"):
        if path.name != "hookspecs.py":
            assert not pattern.search(path.read_text()), f"{path} reads a stage hook without hook()"
