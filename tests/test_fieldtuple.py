"""The compiled getters behind the usage row's journal line and SQLite parameters."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.fieldtuple import tuple_getter
from app.stores.sqlite_values import stored_time
from app.stores.usage_row import JOURNAL_COLUMNS, journal_values
from tests.test_usage_writer import full_row


def test_tuple_getter_reads_the_named_attributes_in_order() -> None:
    row = full_row()
    assert journal_values(row) == tuple(getattr(row, name) for name in JOURNAL_COLUMNS)
    assert tuple_getter(["status", "request_id"])(row) == (row.status, row.request_id)
    assert tuple_getter(["status"])(row) == (row.status,)  # a one-tuple, not the bare value
    assert tuple_getter(["status", "streamed"], {"streamed": int})(row) == (row.status, 1)
    with pytest.raises(AttributeError):
        tuple_getter(["no_such_column"])(row)


def test_a_getter_of_several_objects_returns_their_attributes_in_one_flat_tuple() -> None:
    rows = [full_row(status=200 + i, streamed=i % 2 == 0) for i in range(3)]
    three = tuple_getter(["status", "streamed"], {"streamed": int}, objects=3)
    assert three(*rows) == (200, 1, 201, 0, 202, 1)
    with pytest.raises(TypeError):
        three(*rows[:2])


@pytest.mark.parametrize("name", ["a.b", "x) or (1", "class", "", "a b"])
def test_tuple_getter_takes_only_attribute_names(name: str) -> None:
    with pytest.raises(ValueError, match="not an attribute name"):
        tuple_getter(["status", name])


def test_a_getter_gives_the_stand_in_of_an_attribute_that_is_none() -> None:
    """``nulls``: None becomes the given value, and is never passed to the conversion."""
    values = tuple_getter(["error", "ttft_ms", "status"], {"error": str.upper}, nulls={"error": "-", "ttft_ms": 0.5})
    assert values(full_row(error=None, ttft_ms=None)) == ("-", 0.5, 499)
    assert values(full_row(error="bad", ttft_ms=7)) == ("BAD", 7, 499)
    two = tuple_getter(["ttft_ms"], nulls={"ttft_ms": -1}, objects=2)
    assert two(full_row(ttft_ms=None), full_row(ttft_ms=3)) == (-1, 3)


def test_stored_time_is_the_text_tortoise_stores() -> None:
    """SQLite compares the stored text in the admin's date filters: one character off and a
    day's boundary moves."""
    rng = random.Random(7)
    moments = [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    moments += [datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), datetime(2026, 3, 4, 5, 6, 7, 1, tzinfo=UTC)]
    span = 8000 * 365 * 86400 * 10**6  # microseconds: 1970 to about 9970
    moments += [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(span)) for _ in range(20_000)]
    for at in moments:
        assert stored_time(at) == at.isoformat(sep=" ")
    local = datetime(2026, 3, 4, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert stored_time(local) == "2026-03-05 04:30:00+00:00"
