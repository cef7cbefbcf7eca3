"""A stream's per-event path in one process, this checkout against a revision.

``python bench/pipeline.py REV`` (~1 min): the simulator's v1 stream of a
``--words``-word answer is decoded (``ConversationDecoder``), folded
(``Answer``) and re-encoded as chat completion chunks (``api.chat._stream``)
``--streams`` times per round, in a child process per checkout and round
(``PYTHONPATH`` as ``ab.py`` does; rounds alternate, the order swapped each
round). The upstream body arrives one record per chunk, or ``--group``
records per chunk (as when a loaded server reads several at once). Each
round's output bytes must equal the other checkout's. Prints the CPU
microseconds per stream of each round, the medians and their ratio
this/REV. No sockets, no event loop wake-ups: only the Python work per
event, which ``ab.py`` sees diluted by libcurl, uvloop and the writes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from ab import HERE, worktree


def _body(words: int) -> list[bytes]:
    from chat2api.sim.records import EchoMessage, Turn, render_v1
    from chat2api.sim.replies import reply_text, split_chunks

    turn = Turn(
        conversation_id=str(uuid.UUID(int=1)),
        new_conversation=True,
        model_slug="gpt-5-3",
        default_model_slug="auto",
        plan_type="free",
        echoes=(EchoMessage(str(uuid.UUID(int=2)), "user", {"content_type": "text"}, {}),),
        parent_id="client-created-root",
        chunks=tuple(split_chunks(reply_text("pipeline", words), 1)),
        answer_id=str(uuid.UUID(int=3)),
    )
    return render_v1(turn).records


async def _one(chunks: list[bytes]) -> list[bytes]:
    from chat2api.api.chat import _stream
    from chat2api.conversation import coalesce_text
    from chat2api.convert.completion import Answer
    from chat2api.convert.models import resolve_model
    from chat2api.protocol.stream import ConversationDecoder

    decoder = ConversationDecoder()
    answer = Answer(resolve_model("gpt-4o"), [], None, None)  # type: ignore[arg-type]
    answer.id, answer.created = "chatcmpl-pipeline", 1

    async def deltas() -> AsyncGenerator[dict[str, Any], None]:
        for chunk in chunks:
            for event in coalesce_text(decoder.feed(chunk)):
                for delta in await answer.apply(event):
                    yield delta
        for event in decoder.close():
            for delta in await answer.apply(event):
                yield delta

    async def remember() -> None:
        return None

    return [
        piece
        async for piece in _stream(deltas(), answer, remember, include_usage=False, history=True)
    ]


def child(words: int, group: int, streams: int) -> None:
    records = _body(words)
    chunks = [b"".join(records[i : i + group]) for i in range(0, len(records), group)]

    async def run() -> str:
        digest = hashlib.sha256()
        for _ in range(streams):
            for piece in await _one(chunks):
                digest.update(piece)
        return digest.hexdigest()

    asyncio.run(run())  # warm-up
    started = time.process_time()
    digest = asyncio.run(run())
    spent = time.process_time() - started
    print(json.dumps({"us": spent / streams * 1e6, "digest": digest}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", help="git revision to compare with")
    parser.add_argument("--words", type=int, default=50)
    parser.add_argument("--group", type=int, default=1, help="records per upstream chunk")
    parser.add_argument("--streams", type=int, default=1000, help="streams per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.words, args.group, args.streams)
        return
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with worktree(args.revision or "HEAD") as other:
        sources = {"this": HERE / "src", args.revision or "HEAD": other / "src"}
        times: dict[str, list[float]] = {name: [] for name in sources}
        for round_ in range(args.rounds):
            order = list(sources) if round_ % 2 == 0 else list(reversed(sources))
            digests = set()
            for name in order:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", *_flags(args)],
                    env=os.environ | {"PYTHONPATH": str(sources[name])},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout)
                digests.add(result["digest"])
                times[name].append(result["us"])
                print(f"  round {round_ + 1}  {name:>8}: {result['us']:.1f} us CPU/stream")
            if len(digests) != 1:
                raise SystemExit("the two checkouts wrote different bytes")
        medians = {name: statistics.median(values) for name, values in times.items()}
        this, other_name = medians["this"], next(n for n in medians if n != "this")
        print(
            f"{args.words} words, {args.group} record(s) per chunk, medians: "
            + ", ".join(f"{n} {m:.1f} us" for n, m in medians.items())
            + f"; ratio this/{other_name}: {this / medians[other_name]:.3f}"
        )


def _flags(args: argparse.Namespace) -> list[str]:
    return ["--words", str(args.words), "--group", str(args.group), "--streams", str(args.streams)]


if __name__ == "__main__":
    main()
