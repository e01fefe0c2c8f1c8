"""glibc's allocator keeps freed memory for the next batch instead of returning it to the
kernel and faulting fresh pages in again (checked in a process of its own: the setting is
process-wide)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import resource, sys
from app.allocator import keep_freed_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):  # a PostgreSQL batch: its lines (~270 KB) in a few copies at once, then freed
        first, second = bytearray(1_000_000), bytearray(1_000_000)
        del first, second
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

tuned = keep_freed_memory() if sys.argv[1] == "tuned" else None
print(tuned, faults())
"""


def faults(mode: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1]
    )
    assert done.returncode == 0, done.stderr
    tuned, count = done.stdout.split()
    return tuned, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    _, default = faults("default")
    tuned, kept = faults("tuned")
    assert tuned == "True"
    assert default > 5000  # ~490 pages mapped afresh per batch
    assert kept < default / 10
