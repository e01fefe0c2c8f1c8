"""The usage rows waiting for the database, held as their journal lines in one buffer."""

from __future__ import annotations

import random
from pathlib import Path

from app.stores import pending
from app.stores.journal import Journal
from app.stores.pending import PendingLines
from app.stores.usage_row import chunks, decode_lines


def line(number: int, size: int = 40) -> bytes:
    return f'["{number}", "{"x" * size}"]\n'.encode()


def test_lines_come_out_first_in_first_out_and_stay_until_dropped() -> None:
    lines = PendingLines()
    for number in range(5):
        lines.add(line(number))
    assert len(lines) == 5
    assert lines.peek(2) == (line(0) + line(1), 2)
    assert lines.peek(2) == (line(0) + line(1), 2)  # a failed write: the same lines again
    lines.drop(2)
    assert len(lines) == 3
    assert lines.peek(10) == (line(2) + line(3) + line(4), 3)  # fewer than asked: all of them
    assert list(lines.lines()) == [line(2), line(3), line(4)]
    lines.drop(3)
    assert len(lines) == 0 and lines.peek(5) == (b"", 0) and list(lines.lines()) == []


def test_lines_added_during_a_write_wait_behind_the_written_ones() -> None:
    lines = PendingLines()
    lines.add(line(0))
    lines.add(line(1))
    written, count = lines.peek(2)
    lines.add(line(2))  # arrives while the batch is being written
    lines.drop(count)
    assert written == line(0) + line(1)
    assert lines.peek(5) == (line(2), 1)


def test_the_buffer_is_reused_grows_for_a_backlog_and_shrinks_back() -> None:
    """Under steady load lines move to the front instead of the buffer growing; a backlog
    (the database away) makes it grow, and once everything is written it is small again.
    Checked against a plain list of lines, with random adds and drops."""
    rng = random.Random(7)
    lines, model = PendingLines(), []
    number = 0
    for _ in range(3000):
        for _ in range(rng.randrange(0, 30)):
            added = line(number, rng.randrange(0, 300))
            lines.add(added)
            model.append(added)
            number += 1
        if rng.random() < 0.7:
            count = rng.randrange(0, 40)
            assert lines.peek(count) == (b"".join(model[:count]), len(model[:count]))
            lines.drop(count)
            del model[:count]
        assert len(lines) == len(model)
    assert list(lines.lines()) == model
    steady = len(lines._buffer)
    for _ in range(20_000):  # a backlog
        added = line(number, 200)
        lines.add(added)
        model.append(added)
        number += 1
    assert len(lines._buffer) > 4 * pending.INITIAL_BYTES >= steady
    assert lines.peek(len(model)) == (b"".join(model), len(model))
    lines.drop(len(model))
    assert len(lines._buffer) == pending.INITIAL_BYTES


def test_a_line_larger_than_the_buffer_fits() -> None:
    lines = PendingLines()
    big = line(1, 3 * pending.INITIAL_BYTES)
    lines.add(line(0))
    lines.add(big)
    assert lines.peek(2) == (line(0) + big, 2)


def test_chunks_split_journal_lines_a_number_at_a_time() -> None:
    data = b"".join(line(number) for number in range(10))
    assert list(chunks(data, 4)) == [
        b"".join(line(n) for n in range(4)),
        b"".join(line(n) for n in range(4, 8)),
        line(8) + line(9),
    ]
    assert list(chunks(data, 10)) == [data]
    assert list(chunks(b"", 3)) == []


def test_where_chunks_end_comes_from_the_line_ends_kept_and_matches_a_search(tmp_path: Path) -> None:
    """The writer cuts its batch into chunks where the journal (or this buffer) says every
    ``count`` lines end, instead of looking for each line's end: the chunks are the same."""
    journal, buffer = Journal(tmp_path), PendingLines()
    sizes = random.Random(7).choices(range(300), k=60)
    for number, size in enumerate(sizes):
        assert journal.add_line(line(number, size))
        buffer.add(line(number, size))
    for dropped in (0, 3, 17):
        journal.drop(dropped)
        buffer.drop(dropped)
        for source in (journal, buffer):
            for batch in (0, 1, 4, 5, 23, 100):
                data, count = source.peek(batch)
                for every in (1, 4, 96):
                    cut = list(chunks(data, every, source.cuts(count, every)))
                    assert cut == list(chunks(data, every)) and b"".join(cut) == data
                    assert [len(decode_lines(piece)) for piece in cut] == [
                        min(every, count - at) for at in range(0, count, every)
                    ]
    journal.close()
