"""Give large freed buffers back to the operating system (glibc only; a no-op elsewhere).

glibc serves big allocations with mmap and returns them on free, but its threshold for that is
dynamic: after the first big block is freed it rises to that block's size (up to 32 MiB), so a
burst of 1 MiB message bodies ends up in the heap, which keeps it after the burst. Measured
(benchmarks/send_memory.py): the server and its store process still held about 430 MiB ten
seconds after a burst of 1 MiB bodies; with the threshold fixed at 256 KiB, about 230 MiB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 256 * 1024


def release_large_buffers() -> None:
    """Fix glibc's mmap threshold (which also turns off its dynamic growth). Call once per process."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused")
