"""The C heap's tuning (``chat2api.heap``), measured in fresh interpreters."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from chat2api.heap import QUIET_TRANSFERS, RECLAIM_BYTES, Heap, Reclaim

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's heap"
)

# 256 blocks the size of libcurl's send buffer (16 KiB and its header), taken
# with calloc and written at the start only, as a request writes them; prints
# how much resident private memory they added.
_SEND_BUFFERS = textwrap.dedent(
    """
    import ctypes, sys
    from chat2api.heap import HEAP

    def anon():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

    if sys.argv[1] == "tune":
        assert HEAP.tune({}) == 2
    libc = ctypes.CDLL(None)
    libc.calloc.restype = ctypes.c_void_p
    before = anon()
    blocks = [libc.calloc(1, 16384 + 40) for _ in range(256)]
    for block in blocks:
        ctypes.memset(block, 1, 512)
    print(anon() - before)
    """
)


def _resident_growth(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", _SEND_BUFFERS, mode],
        env=env | {"PYTHONMALLOC": "malloc"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout)


@glibc_only
def test_tuned_heap_keeps_unwritten_send_buffer_pages_out() -> None:
    """Tuned, a 16 KiB calloc block costs the pages written, not all four."""
    plain = _resident_growth("plain")
    tuned = _resident_growth("tune")
    assert plain >= 256 * 12288  # cleared by calloc: (nearly) every page resident
    assert tuned <= 256 * 8192  # a fresh mapping: the written page (and the header's)


@glibc_only
def test_tune_leaves_parameters_the_environment_sets() -> None:
    """A malloc parameter given in the environment is not overridden."""
    script = (
        "from chat2api.heap import HEAP, MALLOC_ENV\n"
        "print(HEAP.tune(MALLOC_ENV), HEAP.tune({'MALLOC_TOP_PAD_': '4096'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["0", "1"]


def test_launchers_run_the_tuned_c_allocator() -> None:
    """scripts/serve and the Docker image start serve with PYTHONMALLOC=malloc and MALLOC_ENV."""
    from pathlib import Path

    from chat2api.heap import MALLOC_ENV

    root = Path(__file__).parents[2]
    script = (root / "scripts" / "serve").read_text()
    docker = (root / "Dockerfile").read_text()
    assert 'PYTHONMALLOC="${PYTHONMALLOC:-malloc}"' in script
    assert "PYTHONMALLOC=malloc" in docker
    for name, value in MALLOC_ENV.items():
        assert f'{name}="${{{name}:-{value}}}"' in script
        assert f"{name}={value}" in docker


class CountingHeap(Heap):
    """A real ``Heap`` that also counts the trims ``Reclaim`` asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def trim(self) -> None:
        self.calls.append("trim")
        super().trim()

    def trim_if_grown(self, threshold: int) -> bool:
        self.calls.append(f"if_grown {threshold}")
        return super().trim_if_grown(threshold)


def test_reclaim_waits_for_quiet_then_trims_once() -> None:
    """Freed handles or a shed call for one full trim once quiet; after that, only if grown."""
    heap = CountingHeap()
    reclaim = Reclaim(heap)
    reclaim.after_trim(closed=3, sheds=0, active=QUIET_TRANSFERS + 1)
    assert heap.calls == []  # a burst still runs: no pause now
    reclaim.after_trim(closed=0, sheds=0, active=QUIET_TRANSFERS)
    assert heap.calls == ["trim"]
    reclaim.after_trim(closed=0, sheds=0, active=0)
    assert heap.calls == ["trim", f"if_grown {RECLAIM_BYTES}"]
    reclaim.after_trim(closed=0, sheds=1, active=0)  # connections closed after the burst
    assert heap.calls[-1] == "trim"
    reclaim.after_trim(closed=0, sheds=1, active=0)  # the same shed again: nothing new
    assert heap.calls[-1] == f"if_grown {RECLAIM_BYTES}"
