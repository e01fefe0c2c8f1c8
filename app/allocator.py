"""glibc's allocator, told to keep memory it got from the kernel instead of handing it back.

By default glibc returns freed memory at the top of its heap as soon as more than ~128 KB is
free there (a threshold it raises only as far as twice the largest block it has mapped). The
usage writer's PostgreSQL batch (its rows' journal lines, a few hundred KB, copied a few times
on the way to the driver) was freed and asked for again with every batch: the kernel handed
back fresh zeroed pages each time, ~0.46 page faults per request (relay CPU per request
194 -> 189 us with the thresholds below, bench A/B). Blocks of more than ``MMAP_BYTES`` are
still mapped on their own and returned at once, and at most ``KEEP_BYTES`` of free heap is
kept, so a spike (a large image in a request) does not stay resident for long.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("llm_relay.allocator")
M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 32 << 20
MMAP_BYTES = 4 << 20


def keep_freed_memory() -> bool:
    """Set the thresholds; False where the C library has no ``mallopt`` (musl, macOS)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    done = bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES) == 1 and mallopt(M_MMAP_THRESHOLD, MMAP_BYTES) == 1)
    if not done:
        log.debug("mallopt refused the allocator's thresholds")
    return done
