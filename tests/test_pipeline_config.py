"""A broken pipeline configuration fails at start-up with a message that says what is wrong
(and, for a stage that can't be found, what is installed): one test per way to get it wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.pipeline import PipelineError
from app.pipeline.loader import BUILTIN, installed
from tests.conftest import relay_settings

DEFAULT = "tags,route,resolve,limits,quirks,dispatch,meter,cost"


def start(db_url: str, tmp_path: Path, toml: str | None = None, stages: str = DEFAULT) -> None:
    path = ""
    if toml is not None:
        file = tmp_path / "pipeline.toml"
        file.write_text(toml)
        path = str(file)
    create_app(relay_settings(db_url, "http://127.0.0.1:9", pipeline_stages=stages, pipeline_file=path), migrate=False)


def fails(db_url: str, tmp_path: Path, *fragments: str, toml: str | None = None, stages: str = DEFAULT) -> str:
    with pytest.raises(PipelineError) as info:
        start(db_url, tmp_path, toml, stages)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_stage_lists_what_is_installed(db_url, tmp_path) -> None:
    message = fails(db_url, tmp_path, "unknown stage 'nope'", "installed stages:", stages="tags,nope,dispatch")
    for name in BUILTIN:
        assert name in message
    assert set(BUILTIN) <= set(installed())


def test_dotted_path_that_does_not_import(db_url, tmp_path) -> None:
    fails(
        db_url, tmp_path, "cannot load stage 'tests.no_such_module:Stage'", stages="tests.no_such_module:Stage,dispatch"
    )
    fails(db_url, tmp_path, "cannot load stage", stages="tests.stage_samples:Missing,dispatch")


def test_not_a_stage(db_url, tmp_path) -> None:
    for name in ("NotCallable", "SyncCall"):
        fails(db_url, tmp_path, "does not satisfy the Stage protocol", stages=f"tests.stage_samples:{name},dispatch")
    fails(db_url, tmp_path, "is not a class or factory", stages="tests.stage_samples:not_a_class,dispatch")


def test_constructor_must_take_its_context(db_url, tmp_path) -> None:
    fails(db_url, tmp_path, "must take one argument, its StageContext", stages="tests.stage_samples:NoContext,dispatch")


def test_dispatch_missing_or_doubled(db_url, tmp_path) -> None:
    fails(db_url, tmp_path, "has no dispatch stage", "installed stages:", stages="tags,resolve,meter,cost")
    fails(db_url, tmp_path, "more than one terminal stage", stages="dispatch,tests.stage_samples:SecondDispatch")


def test_empty_and_duplicate(db_url, tmp_path) -> None:
    fails(db_url, tmp_path, "the pipeline is empty", stages=" , ")
    fails(db_url, tmp_path, "listed twice", stages="tags,tags,dispatch")


def test_pipeline_file_errors(db_url, tmp_path) -> None:
    fails(db_url, tmp_path, "not valid TOML", toml="stages = [")
    fails(db_url, tmp_path, "unknown keys ['stage']", toml='stage = ["dispatch"]')
    fails(db_url, tmp_path, "'stages' must be a list", toml='stages = "dispatch"')
    fails(db_url, tmp_path, "must be tables", toml='options = { tags = 1 }\nstages = ["tags", "dispatch"]')
    fails(db_url, tmp_path, "not in the pipeline: ['redact']", toml='[options.redact]\npatterns = ["email"]')
    with pytest.raises(PipelineError, match="cannot read"):
        create_app(relay_settings(db_url, "http://127.0.0.1:9", pipeline_file=str(tmp_path / "absent.toml")))
    fails(
        db_url,
        tmp_path,
        "both PIPELINE_STAGES and 'stages' in PIPELINE_FILE",
        toml='stages = ["tags", "dispatch"]',
        stages="tags,resolve,dispatch",
    )


def test_option_errors(db_url, tmp_path) -> None:
    marker = 'stages = ["tests.stage_samples:Marker", "dispatch"]\n[options."tests.stage_samples:Marker"]\n'
    fails(db_url, tmp_path, "has no option(s) ['lable']", toml=marker + 'lable = "x"')
    fails(db_url, tmp_path, "option 'label' must be str, got int 3", toml=marker + "label = 3")
    stages = 'stages = ["tags", "spend_limit", "redact", "header_tags", "dispatch"]\n'
    ok_rest = '[options.redact]\n[options.header_tags]\nheaders = { x-team = "" }\n'
    fails(db_url, tmp_path, "needs the option 'budgets'", toml=stages + ok_rest)
    fails(
        db_url,
        tmp_path,
        "option 'budgets': 'lots' is not a number of dollars",
        toml=stages + '[options.spend_limit]\nbudgets = { a = "lots" }\n' + ok_rest,
    )
    fails(
        db_url,
        tmp_path,
        "a budget must be zero or more dollars",
        toml=stages + "[options.spend_limit]\nbudgets = { a = -1 }\n" + ok_rest,
    )
    budget = '[options.spend_limit]\nbudgets = { a = "1" }\n'
    fails(
        db_url,
        tmp_path,
        "pattern 'bad' is not a valid regex",
        toml=stages
        + budget
        + '[options.redact]\ncustom = { bad = "(" }\n[options.header_tags]\nheaders = { x = "" }\n',
    )
    fails(
        db_url,
        tmp_path,
        "unknown pattern(s) ['mail']",
        toml=stages + budget + '[options.redact]\npatterns = ["mail"]\n[options.header_tags]\nheaders = { x = "" }\n',
    )
    fails(db_url, tmp_path, "give at least one header", toml=stages + budget + "[options.header_tags]\nheaders = {}\n")


def test_a_good_file_configures_order_and_options(db_url, tmp_path) -> None:
    toml = (
        'stages = ["tags", "tests.stage_samples:Marker", "resolve", "quirks", "dispatch", "meter", "cost"]\n'
        '[options."tests.stage_samples:Marker"]\nlabel = "here"\n'
    )
    file = tmp_path / "pipeline.toml"
    file.write_text(toml)
    app = create_app(relay_settings(db_url, "http://127.0.0.1:9", pipeline_file=str(file)), migrate=False)
    assert app.pipeline.names == ["tags", "marker", "resolve", "quirks", "dispatch", "meter", "cost"]
    info = {i.name: i for i in app.pipeline.info}
    assert info["marker"].source == "dotted path" and info["marker"].options == {"label": "here"}
    assert info["tags"].source == "llm-relay"  # the built-ins come through the entry points too


def test_serve_refuses_to_start_and_says_why(db_url, tmp_path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path),
        "PIPELINE_STAGES": "tags,resolve,dispatch,nope",
        "ADMIN_ENABLED": "false",
        "PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "the pipeline cannot start: unknown stage 'nope'; installed stages:" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_stage_sets_response_headers_through_the_reply(make_relay, tmp_path) -> None:
    file = tmp_path / "pipeline.toml"
    stages = ["tags", "resolve", "quirks", "dispatch", "tests.stage_samples:Stamp", "meter", "cost"]
    file.write_text(f"stages = {stages!r}\n".replace("'", '"'))
    relay = make_relay(pipeline_file=str(file))
    for model in ("openai/chat_nonstream_basic", "openai/chat_stream_text_short"):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": "_stream_" in model}
        response = httpx.post(relay.url + "/v1/chat/completions", json=body, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["x-stamp"] == f"seen {model}"
        assert response.headers["x-relay-model"] == model  # the relay's own wins
