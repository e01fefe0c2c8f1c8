"""Settings from the environment: types, secrets from files, providers and instances."""

from __future__ import annotations

import re

import pytest

from app.settings import Settings, SettingsError
from app.upstreams import providers_from_settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 11434, "./data")
    assert settings.resolved_database_url == "sqlite://data/llm-relay.db"
    assert settings.pipeline_stages == "tags,route,resolve,limits,quirks,dispatch,meter,cost"
    assert providers_from_settings(settings) == []


def test_types_are_checked() -> None:
    assert Settings.from_env({"PORT": "8000", "USAGE_FLUSH_SECONDS": "0.25"}).port == 8000
    with pytest.raises(SettingsError, match="PORT='x' is not a valid int"):
        Settings.from_env({"PORT": "x"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"USAGE_BATCH_SIZE": "0"}, "USAGE_BATCH_SIZE=0 must be above 0"),  # the writer spun, the relay hung
        ({"USAGE_FLUSH_SECONDS": "-1"}, "must be above 0"),
        ({"CONFIG_REFRESH_SECONDS": "0"}, "must be above 0"),  # a busy loop
        ({"OLLAMA_REFRESH_SECONDS": "nan"}, "must be a finite number"),  # polled once, then never
        ({"ADMIN_SESSION_HOURS": "inf"}, "must be a finite number"),  # every login a 500
        ({"UPSTREAM_MAX_HEADER_BYTES": "-1"}, "must be above 0"),  # every request a 500
        ({"MAX_BODY_BYTES": "0"}, "must be above 0"),  # every request a 413
        ({"UPSTREAM_RETRIES": "-1"}, "must be 0 or more"),
        ({"PORT": "86537"}, "is not a port"),  # it bound 86537 - 65536 and logged 86537
        ({"PORT": "-1"}, "must be 0 or more"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose' is not one of"),
        ({"TRUSTED_PROXIES": "10.0.0.1,127.0.0.1/33"}, "TRUSTED_PROXIES: '127.0.0.1/33' is not"),  # was ignored
    ],
)
def test_numbers_that_cannot_work_are_refused_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_zero_means_none_where_the_docs_say_so() -> None:
    zeros = ("PORT", "UPSTREAM_TOTAL_TIMEOUT", "UPSTREAM_RETRIES", "SHUTDOWN_GRACE_SECONDS", "MAX_INFLIGHT_BODY_BYTES")
    settings = Settings.from_env(dict.fromkeys(zeros, "0"))
    assert (settings.port, settings.upstream_retries, settings.max_inflight_body_bytes) == (0, 0, 0)


def test_provider_keys_base_urls_and_secret_files(tmp_path) -> None:
    key_file = tmp_path / "groq"
    key_file.write_text("gsk-from-file\n")
    db_file = tmp_path / "db"
    db_file.write_text("postgres://u:p@db:5432/relay")
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-env",
            "OPENAI_BASE_URL": "http://proxy.local/v1/",
            "GROQ_API_KEY_FILE": str(key_file),
            "DATABASE_URL_FILE": str(db_file),
        }
    )
    providers = {p.name: p for p in providers_from_settings(settings)}
    assert providers["openai"].api_key == "sk-env" and providers["openai"].base_url == "http://proxy.local/v1"
    assert providers["groq"].api_key == "gsk-from-file"
    assert providers["groq"].base_url == "https://api.groq.com/openai/v1"
    assert settings.resolved_database_url == "postgres://u:p@db:5432/relay"


def test_unreadable_secret_file_is_an_error(tmp_path) -> None:
    with pytest.raises(SettingsError, match="OPENAI_API_KEY_FILE: cannot read"):
        Settings.from_env({"OPENAI_API_KEY_FILE": str(tmp_path / "missing")})


def test_ollama_instances() -> None:
    settings = Settings.from_env({"OLLAMA_INSTANCES": "home=http://10.0.0.2:11434/, gpu=https://gpu.lan"})
    providers = providers_from_settings(settings)
    assert [(p.name, p.base_url, p.family) for p in providers] == [
        ("home", "http://10.0.0.2:11434", "ollama"),
        ("gpu", "https://gpu.lan", "ollama"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("home", "expected name=value"),
        ("openai=http://x", "can't name an instance"),
        ("home=ftp://x", "must be an http"),
        ("a=http://x,a=http://y", "unique"),
    ],
)
def test_bad_ollama_instances(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        providers_from_settings(Settings.from_env({"OLLAMA_INSTANCES": value}))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "not-a-url"}, "OPENAI_BASE_URL must be an http(s) URL"),
        ({"OLLAMA_INSTANCES": "home=http://[::1"}, "OLLAMA_INSTANCES: home: 'http://[::1' is not a URL"),
    ],
)
def test_base_urls_are_urls(env: dict[str, str], message: str) -> None:
    """Accepted, they failed every request with a 502 naming a URL nobody could reach."""
    with pytest.raises(SettingsError, match=re.escape(message)):
        providers_from_settings(Settings.from_env(env))
