"""The C heap (glibc's malloc): how it is tuned, and giving freed memory back.

``chat2api serve`` is meant to run Python on the C allocator
(``PYTHONMALLOC=malloc``, set by ``scripts/serve`` and the Docker image) so
that what a burst of streams freed can go back to the system. When to give
it back is :class:`Reclaim`'s to decide: the session pool tells it, every
few seconds, what it closed and how many transfers still run; it runs a
full collection and :meth:`Heap.trim` once a burst has drained, and
:meth:`Heap.trim_if_grown` while it is quiet (docs/design.md, "Memory goes
back after a burst").

:data:`MALLOC_ENV` (what ``scripts/serve`` and the image set) and
:meth:`Heap.tune` (``mallopt`` at start, for a process started without them)
choose two malloc parameters for what an open stream keeps:

* every transfer in libcurl holds a send buffer of 16 KiB (its minimum)
  from the start of the request to the handle's next one, taken with
  ``calloc``. Cleared by ``calloc``, all of it is resident, though a
  request writes only its first few KiB. A block of 16 KiB or more that
  the heap cannot serve from its free memory is mapped instead
  (``M_MMAP_THRESHOLD``): fresh pages are zero already, so ``calloc``
  leaves them alone and only the pages curl writes become resident;
* ``M_TOP_PAD`` 0: the heap grows by what is asked, no more, so such a
  block is rarely cut from a spare top of the heap.

What that saves is in docs/design.md ("Streams are served lean"). Blocks of
16 KiB to 128 KiB (the default threshold) now cost a mapping each. A parameter set
in the environment is left as given.

Elsewhere (musl, macOS) everything here does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import mmap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "HEAP",
    "MALLOC_ENV",
    "MMAP_THRESHOLD",
    "QUIET_TRANSFERS",
    "RECLAIM_BYTES",
    "Heap",
    "Reclaim",
]

MMAP_THRESHOLD = 16 << 10  # libcurl's smallest upload buffer: the blocks to map
QUIET_TRANSFERS = 8  # a burst has drained once at most this many transfers run
RECLAIM_BYTES = 4 << 20  # freed heap worth handing back to the system once quiet
_M_TOP_PAD = -2  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

# (mallopt parameter, the environment variable glibc reads it from, value)
_TUNING = (
    (_M_TOP_PAD, "MALLOC_TOP_PAD_", 0),
    (_M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD),
)
# The same parameters as glibc reads them at start-up: set before the
# interpreter's own start-up allocations, they keep a lower peak than
# :meth:`Heap.tune` does later (docs/design.md).
MALLOC_ENV = {name: str(value) for _, name, value in _TUNING}

_PAGE_SIZE = mmap.PAGESIZE
_STATM = Path("/proc/self/statm")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


class Heap:
    """glibc's heap: tune it, give freed memory back, tell how much lies idle."""

    def __init__(self) -> None:
        self._trim: Any = None
        self._info: Any = None
        self._mallopt: Any = None
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
        except OSError:
            libc = None
        if libc is not None and hasattr(libc, "malloc_trim"):  # glibc, not musl
            self._trim = libc.malloc_trim
            self._mallopt = libc.mallopt
            if hasattr(libc, "mallinfo2"):  # glibc 2.33 and later
                self._info = libc.mallinfo2
                self._info.restype = _MallInfo2
        self.idle_after_trim = self.idle_bytes()

    def tune(self, environ: Mapping[str, str]) -> int:
        """Set the malloc parameters above that ``environ`` does not set; how many."""
        if self._mallopt is None:
            return 0
        return sum(
            bool(self._mallopt(param, value))
            for param, name, value in _TUNING
            if name not in environ
        )

    def idle_bytes(self) -> int:
        """Private resident memory that malloc does not count as in use (0 if unknown).

        Free heap chunks whose pages were handed back are not resident, so
        unlike malloc's own free count this grows only with what freeing
        left behind since.
        """
        if self._info is None:
            return 0
        try:
            _, resident, shared = _STATM.read_bytes().split()[:3]
        except (OSError, ValueError):
            return 0
        private = (int(resident) - int(shared)) * _PAGE_SIZE
        return max(0, private - int(self._info().uordblks))

    def trim(self) -> None:
        """Hand the free heap's whole pages back to the system, not just to malloc."""
        if self._trim is not None:
            self._trim(0)
        self.idle_after_trim = self.idle_bytes()

    def trim_if_grown(self, threshold: int) -> bool:
        """:meth:`trim` if ``threshold`` bytes more lie idle than after the last trim."""
        idle = self.idle_bytes()
        if idle - self.idle_after_trim < threshold:
            # Memory reused since lowers the mark: what is freed again counts anew.
            self.idle_after_trim = min(self.idle_after_trim, idle)
            return False
        self.trim()
        return True


HEAP = Heap()


class Reclaim:
    """When to hand what a burst freed back to the system (see the module docstring).

    :meth:`after_trim` is called after each round of closing idle handles,
    with how many were closed, the count of connection sheds so far, and
    the transfers running now. Closed handles or a new shed mean freed
    memory: once at most ``QUIET_TRANSFERS`` transfers run, it runs a full
    collection (a burst's replies and request bodies may sit in reference
    cycles the young generations never reach; done then, the pause delays
    nobody) and trims the heap. Otherwise, while quiet, it trims whenever
    ``RECLAIM_BYTES`` more lie idle than after the last trim (what the
    burst's tail freed later: clients' idle keep-alive connections, say).
    """

    def __init__(self, heap: Heap = HEAP) -> None:
        self.heap = heap
        self._pending = False  # handles or connections closed: memory to give back once quiet
        self._sheds = 0  # the connection sheds seen so far

    def after_trim(self, *, closed: int, sheds: int, active: int) -> None:
        """Note what a trimming round closed; reclaim if it is time."""
        # Connections a burst left open are closed once its last transfer
        # ended, which may be after the reclaim that ran with a few still going.
        self._pending = self._pending or closed > 0 or sheds != self._sheds
        self._sheds = sheds
        if active > QUIET_TRANSFERS:
            return
        if self._pending:
            self._pending = False
            gc.collect()
            self.heap.trim()
        else:
            self.heap.trim_if_grown(RECLAIM_BYTES)
