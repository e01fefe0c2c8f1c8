"""The Dashboard and Usage pages and their JSON API, end to end: requests go through a real
relay, and every figure shown must equal the sum of exactly those rows, on both databases.

The database is shared with the rest of the suite, so each test tags its own requests with a
fresh run tag (or brackets them with a date range) and compares against those rows only.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from app.admin.pages.usage import usd
from app.stores.queries import EXPORT_FIELDS

MESSAGES = [{"role": "user", "content": "hi"}]
GPT_4O = 3_670_000  # 16 in at $2.50, 363 out at $10 per million (chat_nonstream_basic)
SONNET = 2_404_800  # the cache read and write recording, as test_cost_relay works it out
SUMMED = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_nanousd",
)


@contextmanager
def replaying(upstream, provider: str, recording: str) -> Iterator[None]:
    upstream.fallback[provider] = recording
    try:
        yield
    finally:
        upstream.fallback.pop(provider, None)


def post(relay, model: str, tags: str) -> httpx.Response:
    body = {"model": model, "messages": MESSAGES}
    return httpx.post(relay.url + "/v1/chat/completions", json=body, headers={"X-Proxy-Tag": tags})


@dataclass
class Seed:
    run: str  # every request carries it
    a: str  # three priced gpt-4o requests and the error
    b: str  # the priced Claude request and the unpriced one
    rows: list[dict[str, Any]]

    def tagged(self, tag: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if tag in r["tags"]]


def seed(admin, upstream) -> Seed:
    """Six requests: three priced (OpenAI), one priced (Anthropic), one unpriced, one error."""
    run = uuid.uuid4().hex[:8]
    s = Seed(f"u-{run}", f"a-{run}", f"b-{run}", [])
    relay = admin.relay
    with replaying(upstream, "openai", "chat_nonstream_basic"):
        for _ in range(3):
            assert post(relay, "openai/gpt-4o", f"{s.run},{s.a}").status_code == 200
    with replaying(upstream, "anthropic", "messages_nonstream_cache_read_and_creation"):
        assert post(relay, "anthropic/claude-sonnet-4-5", f"{s.run},{s.b}").status_code == 200
    assert post(relay, "openai/chat_nonstream_basic", f"{s.run},{s.b}").status_code == 200  # not in the catalog
    assert post(relay, "mystery-model", f"{s.run},{s.a}").status_code == 404
    s.rows = relay.rows(tag=s.run)
    assert len(s.rows) == 6
    return s


def sums(rows: list[dict[str, Any]]) -> dict[str, int | None]:
    """What every aggregate must say about these rows, worked out from the rows alone: the cost
    of the priced ones, None (never 0) when not one had a price, and how many it leaves out."""
    out: dict[str, int | None] = {column: sum(r[column] or 0 for r in rows) for column in SUMMED}
    out["requests"] = len(rows)
    out["errors"] = sum(r["outcome"] != "ok" for r in rows)
    out["unpriced"] = sum(r["outcome"] == "ok" and r["cost_nanousd"] is None for r in rows)
    out["unpriced_requests"] = sum(r["cost_nanousd"] is None for r in rows)
    if rows and out["unpriced_requests"] == len(rows):
        out["cost_nanousd"] = None
    return out


def figures_of(answer: dict[str, Any]) -> dict[str, int | None]:
    return {k: answer[k] for k in (*SUMMED, "requests", "errors", "unpriced", "unpriced_requests")}


def grouped(rows: list[dict[str, Any]], by: str) -> dict[str, dict[str, int]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if by == "tag":
            for tag in row["tags"]:
                groups[tag].append(row)
        else:
            column = {"model": "resolved_model"}.get(by, by)
            groups[row[column] or ""].append(row)
    return {key: sums(members) for key, members in groups.items()}


def data_value(html: str, element_id: str) -> int:
    found = re.search(rf'<data id="{element_id}" value="(-?\d+)"[^>]*>([^<]*)</data>', html)
    assert found, f"no {element_id} in the page"
    return int(found.group(1))


def data_text(html: str, element_id: str) -> str:
    found = re.search(rf'<data id="{element_id}" value="[^"]*"[^>]*>([^<]*)</data>', html)
    assert found, f"no {element_id} in the page"
    return found.group(1)


def test_summary_series_and_breakdowns_equal_the_rows(make_admin, upstream) -> None:
    admin = make_admin()
    s = seed(admin, upstream)
    expected = sums(s.rows)
    assert expected["cost_nanousd"] == 3 * GPT_4O + SONNET  # the rows themselves are right
    assert (expected["errors"], expected["unpriced"]) == (1, 1)

    answer = admin.client.get("/api/usage/summary", params={"tag": s.run}).json()
    assert figures_of(answer) == expected
    assert answer["ok"] == 5 and answer["priced"] == 4
    assert answer["cost_usd"] == pytest.approx(expected["cost_nanousd"] / 1e9)
    assert answer["success_rate"] == pytest.approx(5 / 6) and answer["error_rate"] == pytest.approx(1 / 6)
    assert answer["filters"]["tag"] == s.run

    series = admin.client.get("/api/usage/series", params={"tag": s.run}).json()
    assert series["bucket"] == "day" and len(series["points"]) == 7  # the last seven days by default
    assert series["points"][-1]["start"][:10] == datetime.now(UTC).date().isoformat()
    for column in (*SUMMED, "requests", "errors", "unpriced", "unpriced_requests"):
        assert sum(p[column] or 0 for p in series["points"]) == expected[column], column
    assert all(p["cost_nanousd"] == 0 for p in series["points"] if not p["requests"])  # nothing spent

    for by in ("tag", "provider", "model", "client", "outcome"):
        answer = admin.client.get("/api/usage/breakdown", params={"tag": s.run, "by": by}).json()
        assert {row["key"]: figures_of(row) for row in answer["rows"]} == grouped(s.rows, by), by
        costs = [row["cost_nanousd"] or 0 for row in answer["rows"]]
        assert costs == sorted(costs, reverse=True)
    by_tag = {
        r["key"]: r for r in admin.client.get("/api/usage/breakdown", params={"by": "tag", "tag": s.run}).json()["rows"]
    }
    assert (by_tag[s.run]["requests"], by_tag[s.a]["requests"], by_tag[s.b]["requests"]) == (6, 4, 2)
    assert by_tag[s.b]["cost_nanousd"] == SONNET and by_tag[s.b]["unpriced_requests"] == 1
    assert by_tag[s.a]["cost_nanousd"] == 3 * GPT_4O and by_tag[s.a]["unpriced_requests"] == 1  # the error
    by_model = admin.client.get("/api/usage/breakdown", params={"tag": s.b, "by": "model"}).json()["rows"]
    unpriced = next(r for r in by_model if r["key"] == "openai/chat_nonstream_basic")
    assert (unpriced["cost_usd"], unpriced["cost_nanousd"], unpriced["unpriced_requests"]) == (None, None, 1)
    by_outcome = admin.client.get("/api/usage/breakdown", params={"tag": s.run, "by": "outcome"}).json()["rows"]
    failed = next(r for r in by_outcome if r["key"] == "client_error")
    assert (failed["cost_usd"], failed["cost_nanousd"], failed["unpriced_requests"]) == (None, None, 1)
    assert answer_of_failed_only(admin, s)["cost_nanousd"] is None  # a summary of failures alone


def answer_of_failed_only(admin, s: Seed) -> dict[str, Any]:
    summary: dict[str, Any] = admin.client.get(
        "/api/usage/summary", params={"tag": s.a, "outcome": "client_error"}
    ).json()
    assert (summary["requests"], summary["cost_usd"], summary["unpriced_requests"]) == (1, None, 1)
    return summary


def test_date_range_gives_exactly_the_rows_inside_it_per_hour(make_admin, upstream) -> None:
    admin = make_admin()
    s = seed(admin, upstream)
    first = min(r["created_at"] for r in s.rows)
    last = max(r["created_at"] for r in s.rows)
    window = {"from": first.isoformat(), "to": (last + timedelta(microseconds=1)).isoformat()}
    inside = [r for r in admin.relay.rows() if first <= r["created_at"] <= last]
    assert {r["request_id"] for r in s.rows} <= {r["request_id"] for r in inside}
    assert figures_of(admin.client.get("/api/usage/summary", params=window).json()) == sums(inside)
    series = admin.client.get("/api/usage/series", params=window).json()
    assert series["bucket"] == "hour" and 1 <= len(series["points"]) <= 2
    assert sum(p["cost_nanousd"] for p in series["points"]) == sums(inside)["cost_nanousd"]
    later = {"from": (last + timedelta(microseconds=1)).isoformat()}
    assert admin.client.get("/api/usage/summary", params={**later, "tag": s.run}).json()["requests"] == 0
    day = first.date().isoformat()  # a date as "to" includes that whole day
    whole_day = admin.client.get("/api/usage/summary", params={"from": day, "to": day, "tag": s.run}).json()
    assert whole_day["requests"] == 6 or last.date() != first.date()


def test_filters_and_exports_give_exactly_the_filtered_rows(make_admin, upstream) -> None:
    admin = make_admin()
    s = seed(admin, upstream)
    for params, want in (
        ({"tag": s.a}, s.tagged(s.a)),
        ({"tag": s.run, "provider": "anthropic"}, [r for r in s.rows if r["provider"] == "anthropic"]),
        ({"tag": s.run, "model": "openai/gpt-4o"}, [r for r in s.rows if r["resolved_model"] == "openai/gpt-4o"]),
        ({"tag": s.run, "outcome": "client_error"}, [r for r in s.rows if r["outcome"] == "client_error"]),
        ({"tag": s.run, "status": "404"}, [r for r in s.rows if r["status"] == 404]),
        ({"tag": s.run, "client": "127.0.0.1"}, s.rows),
    ):
        assert want, params
        assert figures_of(admin.client.get("/api/usage/summary", params=params).json()) == sums(want), params

        reply = admin.client.get("/api/usage/export", params={**params, "format": "json"})
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/json")
        exported = reply.json()
        assert sorted(r["request_id"] for r in exported) == sorted(r["request_id"] for r in want), params
        assert all(list(r) == list(EXPORT_FIELDS) for r in exported)

        reply = admin.client.get("/api/usage/export", params={**params, "format": "csv"})
        assert (
            reply.headers["content-type"].startswith("text/csv")
            and "attachment" in reply.headers["content-disposition"]
        )
        table = list(csv.DictReader(io.StringIO(reply.text)))
        assert sorted(r["request_id"] for r in table) == sorted(r["request_id"] for r in want), params
        assert list(table[0]) == list(EXPORT_FIELDS)

    exported = {r["request_id"]: r for r in admin.client.get(f"/api/usage/export?format=json&tag={s.run}").json()}
    table = {
        r["request_id"]: r
        for r in csv.DictReader(io.StringIO(admin.client.get(f"/api/usage/export?format=csv&tag={s.run}").text))
    }
    for row in s.rows:
        mine = exported[row["request_id"]]
        assert {k: v for k, v in mine.items() if k != "created_at"} == {
            k: v for k, v in orjson.loads(orjson.dumps(row)).items() if k != "created_at"
        }
        assert datetime.fromisoformat(mine["created_at"]) == row["created_at"]
        assert table[row["request_id"]]["cost_nanousd"] == (
            "" if row["cost_nanousd"] is None else str(row["cost_nanousd"])
        )
        assert table[row["request_id"]]["tags"] == ",".join(row["tags"])


def test_request_log_is_paginated_newest_first_with_every_field(make_admin, upstream) -> None:
    admin = make_admin()
    s = seed(admin, upstream)
    newest_first = [r["request_id"] for r in sorted(s.rows, key=lambda r: r["created_at"], reverse=True)]
    pages = [
        admin.client.get("/api/usage/requests", params={"tag": s.run, "per_page": 4, "page": n}).json()
        for n in (1, 2, 3)
    ]
    assert [(p["total"], p["pages"], len(p["rows"])) for p in pages] == [(6, 2, 4), (6, 2, 2), (6, 2, 0)]
    assert [r["request_id"] for p in pages for r in p["rows"]] == newest_first
    first = pages[0]["rows"][0]
    assert list(first) == [*EXPORT_FIELDS, "cost_usd"]
    by_id = {r["request_id"]: r for r in s.rows}
    for row in pages[0]["rows"] + pages[1]["rows"]:
        assert row["cost_nanousd"] == by_id[row["request_id"]]["cost_nanousd"]
        assert row["tags"] == by_id[row["request_id"]]["tags"]
        assert row["rates"] == by_id[row["request_id"]]["rates"]  # from the row's rate card
    assert any(row["rates"] for row in pages[0]["rows"] + pages[1]["rows"])
    assert admin.client.get("/api/usage/requests", params={"page": 0}).status_code == 400

    html = admin.client.get("/usage", params={"tag": s.run, "per_page": 4, "page": 2}).text
    assert "Page 2 of 2" in html and 'rel="prev"' in html and 'rel="next"' not in html
    assert re.findall(r'<li id="req-([^"]+)">', html) == newest_first[4:]
    partial = admin.client.get(
        "/usage", params={"tag": s.run, "per_page": 4}, headers={"HX-Request": "true", "HX-Target": "usage-log"}
    ).text
    assert partial.lstrip().startswith('<section id="usage-log"') and "<html" not in partial
    assert re.findall(r'<li id="req-([^"]+)">', partial) == newest_first[:4]
    assert 'hx-get="/usage?tag=' in partial and "page=2" in partial and 'hx-target="#usage-log"' in partial
    past = admin.client.get("/usage", params={"tag": s.run, "per_page": 4, "page": 9}).text
    assert "past the last page" in past and "<li id=" not in past


def test_usage_page_shows_the_rows_figures_and_every_field(make_admin, upstream) -> None:
    admin = make_admin()
    s = seed(admin, upstream)
    expected = sums(s.rows)
    reply = admin.client.get("/usage", params={"tag": s.run})
    assert reply.status_code == 200 and "<html" in reply.text
    html = reply.text
    for element_id, column in (
        ("sum-requests", "requests"),
        ("sum-input", "input_tokens"),
        ("sum-output", "output_tokens"),
        ("sum-cost", "cost_nanousd"),
        ("sum-errors", "errors"),
        ("sum-unpriced", "unpriced_requests"),
    ):
        assert data_value(html, element_id) == expected[column], element_id
    assert usd(expected["cost_nanousd"]) == "$0.0134"
    assert data_text(html, "sum-cost") == "$0.0134 (2 unpriced)"  # the unpriced request and the failed one
    failed = re.search(r'<table id="by-provider">.*?<tr data-key="">(.*?)</tr>', html, re.S)
    assert failed and "unpriced" in failed.group(1) and "$0" not in failed.group(1)  # the 404: no provider
    assert data_text(html, "sum-errors") == "16.7%" and data_text(html, "sum-ok") == "83.3%"
    assert '<svg class="chart"' in html and html.count('<rect class="bar"') == 7
    assert f'<tr data-key="{s.a}">' in html and '<table id="by-provider">' in html
    export = re.search(r'href="(/api/usage/export\?format=csv&amp;[^"]+)"', html).group(1).replace("&amp;", "&")
    assert "from=" in export and "to=" in export  # the exact range shown, pinned
    table = list(csv.DictReader(io.StringIO(admin.client.get(export).text)))
    assert sorted(r["request_id"] for r in table) == sorted(r["request_id"] for r in s.rows)
    blocks = re.findall(r'<li id="req-([^"]+)">(.*?)</li>', html, re.S)
    assert {request_id for request_id, _ in blocks} == {r["request_id"] for r in s.rows}
    for request_id, block in blocks:
        assert re.findall(r"<dt>([^<]+)</dt>", block) == list(EXPORT_FIELDS)
        row = next(r for r in s.rows if r["request_id"] == request_id)
        if row["cost_nanousd"] is None:
            assert "unpriced" in block and "$0.00" not in block
        else:
            assert f"({row['cost_nanousd']:,} nano-dollars)" in block

    partial = admin.client.get(
        "/usage", params={"tag": s.b}, headers={"HX-Request": "true", "HX-Target": "usage-results"}
    )
    assert partial.text.lstrip().startswith('<div id="usage-results"') and "<html" not in partial.text
    assert data_value(partial.text, "sum-requests") == 2
    assert data_text(partial.text, "sum-cost") == f"{usd(SONNET)} (1 unpriced)"
    unpriced = admin.client.get("/usage", params={"tag": s.b, "provider": "openai"}).text
    assert data_text(unpriced, "sum-cost") == "unpriced"
    restore = admin.client.get(
        "/usage", headers={"HX-Request": "true", "HX-History-Restore-Request": "true", "HX-Target": "usage-results"}
    )
    assert "<html" in restore.text

    bad = admin.client.get("/usage", params={"from": "yesterday"})
    assert bad.status_code == 400 and "from and to take a date" in bad.text
    for path, params in (
        ("/api/usage/summary", {"to": "2020-01-01", "from": "2020-02-01"}),
        ("/api/usage/breakdown", {"by": "colour"}),
        ("/api/usage/summary", {"outcome": "meh"}),
        ("/api/usage/summary", {"status": "abc"}),
        ("/api/usage/requests", {"status": "99999999999999999999999"}),  # past SQLite's integers: a 500
        ("/api/usage/summary", {"status": "\u00b9\u00b2\u00b3"}),  # digits to isdigit(), not to int()
        ("/api/usage/series", {"from": "0001-01-01", "to": "9999-12-31"}),  # a day past the last date: a 500
        ("/api/usage/series", {"from": "1900-01-01", "to": "2020-01-01"}),  # a point for each of 43,000 days
        ("/api/usage/export", {"format": "xml"}),
    ):
        assert admin.client.get(path, params=params).status_code == 400, (path, params)


def test_dashboard_figures_equal_todays_rows(make_admin, upstream) -> None:
    admin = make_admin()
    seed(admin, upstream)
    answer = admin.client.get("/api/dashboard").json()
    start = datetime.fromisoformat(answer["day"]).replace(tzinfo=UTC)
    today = [r for r in admin.relay.rows() if start <= r["created_at"] < start + timedelta(days=1)]
    assert figures_of(answer["today"]) == sums(today)
    services = admin.relay.app.services
    assert answer["provider_count"] == len(services.upstreams.providers) == len(answer["providers"])
    assert answer["model_count"] > 0
    for by in ("provider", "model", "client", "tag"):
        groups = grouped(today, by)
        top = sorted(groups.items(), key=lambda kv: (-(kv[1]["cost_nanousd"] or 0), kv[0]))[:5]
        assert [(row["key"], figures_of(row)) for row in answer["top"][by]] == top, by

    html = admin.client.get("/").text
    assert data_value(html, "dash-requests") == len(today)
    assert data_value(html, "dash-cost") == sums(today)["cost_nanousd"]
    assert data_value(html, "dash-unpriced") == sums(today)["unpriced_requests"]
    assert data_value(html, "dash-providers") == answer["provider_count"]
    assert data_value(html, "dash-models") == answer["model_count"]
    for href in ("/providers", "/ollama", "/aliases", "/usage", "/settings"):
        assert f'<li><a href="{href}">' in html


def test_everything_needs_a_session(make_admin) -> None:
    admin = make_admin()
    with httpx.Client(base_url=admin.url) as anonymous:
        for path in (
            "/api/dashboard",
            "/api/usage/summary",
            "/api/usage/series",
            "/api/usage/breakdown?by=tag",
            "/api/usage/requests",
            "/api/usage/export?format=csv",
            "/api/usage/export?format=json",
        ):
            assert anonymous.get(path).status_code == 401, path
        for path in ("/", "/usage", "/usage?tag=x"):
            reply = anonymous.get(path)
            assert reply.status_code == 303 and reply.headers["location"].startswith("/login?next="), path


def test_overlapping_requests_each_get_their_answer(make_admin, upstream) -> None:
    """Requests that overlap on the event loop must not reset each other's database context."""
    admin = make_admin()
    s = seed(admin, upstream)
    paths = [
        f"/usage?tag={s.run}",
        f"/api/usage/summary?tag={s.run}",
        f"/api/usage/requests?tag={s.run}",
        "/",
        "/api/dashboard",
        f"/api/usage/export?format=json&tag={s.run}",
    ]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(admin.client.get, paths * 8))
    assert [r.status_code for r in replies] == [200] * len(replies)
    assert {r.json()["requests"] for r in replies if "/summary" in str(r.url)} == {6}


def test_both_ways_of_running_a_tag_filter_agree(make_admin, upstream) -> None:
    """SQLite picks IN or EXISTS for a tag filter from two counts; both must give the same."""
    from app.admin.api.usage import request_log
    from app.admin.api.usage_queries import Reader, overview, parse_query

    admin = make_admin()
    s = seed(admin, upstream)
    db = admin.relay.app.services.database
    q = parse_query({"tag": s.a}.get)
    assert q.tag_in_range() is False and replace(q, sizes=(10, 10)).tag_in_range() is True

    async def read(sizes: tuple[int, int] | None) -> dict[str, Any]:
        planned = replace(q, sizes=sizes)
        found = await overview(Reader.of(db), planned, 15)
        return {**found, "log": await request_log(Reader.of(db), planned, 1, 2)}

    ctx = admin.relay.app.admin
    by_in = admin.relay.server.call(lambda: ctx.in_db(lambda: read(None)))
    by_exists = admin.relay.server.call(lambda: ctx.in_db(lambda: read((1, 100))))
    assert by_in == by_exists
    assert by_in["summary"]["requests"] == 4 and by_in["log"]["total"] == 4 and len(by_in["log"]["rows"]) == 2
