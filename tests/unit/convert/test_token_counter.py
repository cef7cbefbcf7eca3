"""TokenCounter: counts from its worker process equal toktok's own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import psutil
import pytest
import toktok

from chat2api.convert.usage import TokenCounter, TokenCountError, worker_environment

TEXTS = [
    "",
    "user",
    "Hello, world! Ünïcödé and emoji 🎉",
    "word " * 500,
    "special-looking text <|endoftext|> is <|im_start|> ordinary text",
]


CORPUS = Path(__file__).parents[2] / "fixtures" / "token_counts.json"


def run(coro_fn, idle_seconds=None):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        counter = TokenCounter(idle_seconds)
        try:
            return await coro_fn(counter)
        finally:
            await counter.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_counts_equal_toktok(encoding: str) -> None:
    """Batch counts from the worker are toktok's counts, empty texts included."""
    counts = run(lambda c: c.count(TEXTS, encoding))
    assert counts == [int(n) for n in toktok.batch_count(TEXTS, encoding)]


def test_concurrent_requests_and_long_texts_answered_in_order() -> None:
    """Requests sent in one write, one longer than a pipe read, each get their own answer."""
    long_text = "Ünïcödé words and more words " * 8000  # about 250 KB of JSON
    batches = [[f"request {i} " * i, "user"] for i in range(40)] + [[long_text]]

    async def go(counter: TokenCounter) -> list[list[int]]:
        return list(await asyncio.gather(*(counter.count(b, "o200k_base") for b in batches)))

    expected = [[int(n) for n in toktok.batch_count(b, "o200k_base")] for b in batches]
    assert run(go) == expected


def test_truncate_equals_toktok() -> None:
    """A cut made by the worker is toktok.truncate's, flagged as cut."""
    text = "one two three four five six seven eight nine ten"
    kept, cut = run(lambda c: c.truncate(text, 4, "o200k_base"))
    assert (kept, cut) == (toktok.truncate(text, 4, "o200k_base")[0], True)


def test_byte_bound_needs_no_worker() -> None:
    """Texts of at most `limit` bytes, and all-empty counts, never start the worker."""

    async def go(counter: TokenCounter) -> tuple[object, object, int | None]:
        short = await counter.truncate("short text", 10, "o200k_base")
        empty = await counter.count(["", ""], "o200k_base")
        return short, empty, counter.pid

    assert run(go) == (("short text", False), [0, 0], None)


def test_dead_worker_is_replaced() -> None:
    """A worker killed between requests is replaced; the next request still answers."""

    async def go(counter: TokenCounter) -> list[int]:
        await counter.count(["hello"], "o200k_base")
        pid = counter.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        counts = await counter.count(["hello world"], "o200k_base")
        assert counter.pid != pid
        return counts

    assert run(go) == [2]


def test_bad_encoding_is_an_error() -> None:
    """An error in the worker comes back as TokenCountError; the worker lives on."""

    async def go(counter: TokenCounter) -> list[int]:
        with pytest.raises(TokenCountError):
            await counter.count(["x"], "no_such_encoding")  # type: ignore[arg-type]
        return await counter.count(["hello"], "o200k_base")

    assert run(go) == [1]


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_corpus_counts_are_unchanged(encoding: str) -> None:
    """85 varied texts (scripts, emoji, code, whitespace, long runs) keep their recorded counts."""
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    counts = run(lambda c: c.count(corpus["texts"], encoding))
    assert counts == corpus[encoding]


def test_idle_worker_is_stopped_and_started_again() -> None:
    """With idle_seconds, an idle worker exits (its memory freed); the next request restarts it."""

    async def go(counter: TokenCounter) -> tuple[list[int], list[int]]:
        first = await counter.count(["hello world"], "o200k_base")
        pid = counter.pid
        assert pid is not None
        await asyncio.sleep(0.1)
        assert counter.pid == pid  # not idle long enough yet
        deadline = asyncio.get_running_loop().time() + 10
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert asyncio.get_running_loop().time() < deadline, "the idle worker did not exit"
            await asyncio.sleep(0.05)
        assert counter.pid is None
        second = await counter.count(["hello world", "again"], "o200k_base")
        assert counter.pid not in (None, pid)
        return first, second

    assert run(go, idle_seconds=0.5) == ([2], [2, 1])


def test_busy_worker_is_not_stopped() -> None:
    """Requests closer together than idle_seconds keep the same worker."""

    async def go(counter: TokenCounter) -> int:
        await counter.count(["start"], "o200k_base")
        pid = counter.pid
        for _ in range(6):
            await asyncio.sleep(0.2)
            await counter.count(["again"], "o200k_base")
            assert counter.pid == pid
        return 0

    assert run(go, idle_seconds=0.6) == 0


def test_worker_heap_asks_for_huge_pages() -> None:
    """The worker runs with glibc's huge-page tunable; a deployment's own tunables are kept."""

    async def go(counter: TokenCounter) -> dict[str, str]:
        await counter.count(["hello"], "o200k_base")
        assert counter.pid is not None
        environ: dict[str, str] = psutil.Process(counter.pid).environ()
        return environ

    expected = worker_environment(os.environ)["GLIBC_TUNABLES"]
    assert "glibc.malloc.hugetlb=" in expected
    assert run(go)["GLIBC_TUNABLES"] == expected
    kept = worker_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert kept["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    chosen = worker_environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})
    assert chosen["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"


def test_requests_held_back_at_close_start_no_new_worker() -> None:
    """A request held back when the counter closes fails, and starts no new worker."""

    async def go() -> tuple[BaseException | None, set[int]]:
        counter = TokenCounter()
        await counter.count(["warm"], "o200k_base")
        first = asyncio.ensure_future(counter.count(["many words " * 100_000], "o200k_base"))
        for _ in range(3):  # the first request written, its answer not read yet
            await asyncio.sleep(0)
        second = asyncio.ensure_future(counter.count(["held back"], "o200k_base"))
        await asyncio.sleep(0)
        await counter.aclose()
        results = await asyncio.gather(first, second, return_exceptions=True)
        assert isinstance(results[0], list)  # the write before the close is answered
        children = {p.pid for p in psutil.Process().children() if "token_worker" in p.cmdline()}
        return (results[1] if isinstance(results[1], BaseException) else None), children

    error, children = asyncio.run(go())
    assert isinstance(error, TokenCountError)
    assert children == set()
