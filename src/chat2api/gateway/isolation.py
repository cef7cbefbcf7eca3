"""Per-seed conversation isolation: seeds sharing an account see only their own chats.

Several seeds may use one pool account; upstream, their conversations are
that account's, all in one sidebar. The gateway remembers which seed started
which conversation (the id read from the answer's stream, kept in the store
as ``seed_conversations/<seed>``) and then, for a seed's session:

* the sidebar list (``GET /backend-api/conversations``) keeps only its own;
* a conversation path (``/backend-api/conversation/<id>[/…]``: open, rename,
  delete, attachments) or a message continuing ``<id>`` is a 404 for any
  other conversation, as the upstream answers an unknown one.

Sessions logged in with a token of their own see their account as it is.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from chat2api.store.base import Store

KIND = "seed_conversations"
MAX_KEPT = 5000  # conversations remembered per seed, newest first
_SCAN = 65536  # the conversation id comes in the first records of a stream
CONVERSATION_PATH = re.compile(r"/backend-(?:api|alt)/conversation/([^/]+)(?:/.*)?")
LIST_PATH = re.compile(r"/backend-(?:api|alt)/conversations")
_ID_IN_STREAM = re.compile(rb'"conversation_id"\s*:\s*"([A-Za-z0-9-]{8,64})"')
NOT_FOUND: dict[str, Any] = {
    "detail": {"code": "conversation_not_found", "message": "Conversation not found"}
}


class SeedConversations:
    """The conversations one seed started, kept in the store."""

    def __init__(self, store: Store, seed: str) -> None:
        self.store = store
        self.seed = seed

    async def ids(self) -> list[str]:
        record = await self.store.get_record(KIND, self.seed)
        ids = record.get("ids") if record else None
        return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []

    async def owns(self, conversation_id: str) -> bool:
        return conversation_id in await self.ids()

    async def remember(self, conversation_id: str) -> None:
        ids = await self.ids()
        if ids[:1] == [conversation_id]:
            return
        ids = [conversation_id, *(i for i in ids if i != conversation_id)][:MAX_KEPT]
        await self.store.put_record(KIND, self.seed, {"ids": ids})

    async def refuses(self, method: str, path: str, body: bytes) -> bool:
        """True when this request names a conversation the seed did not start."""
        match = CONVERSATION_PATH.fullmatch(path.rstrip("/"))
        if match is not None:
            return not await self.owns(match.group(1))
        if method == "POST" and body:
            continued = _continued(body)
            return continued is not None and not await self.owns(continued)
        return False

    async def filtered_list(self, data: bytes) -> bytes:
        """The sidebar list with only this seed's conversations."""
        try:
            listing = orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
        items = listing.get("items") if isinstance(listing, dict) else None
        if not isinstance(items, list):
            return data
        mine = set(await self.ids())
        kept = [i for i in items if isinstance(i, dict) and i.get("id") in mine]
        listing["items"] = kept
        listing["total"] = min(int(listing.get("total") or 0), len(mine))
        return orjson.dumps(listing)

    async def watch(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks`` passed on unchanged; the conversation id they name is remembered."""
        seen = b""
        scanned = 0
        found = False
        async for chunk in chunks:
            if not found and scanned < _SCAN:
                scanned += len(chunk)
                seen = seen[-200:] + chunk  # an id split across two chunks is still found
                match = _ID_IN_STREAM.search(seen)
                if match is not None:
                    found = True
                    await self.remember(match.group(1).decode())
            yield chunk


def _continued(body: bytes) -> str | None:
    """The ``conversation_id`` a conversation POST continues, if any."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = data.get("conversation_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None
