"""Kept conversations (spec 1.8, 4.3): the message tree of every non-temporary conversation.

A conversation request with `history_and_training_disabled: false` is kept:
its id, its owner (the token's user and account, or the anonymous device id)
and a tree of nodes, each a full message object with its parent and children.
The root is a node without a message whose id is the first request's
`parent_message_id` (E2: a random UUID; E3: `client-created-root`). A
follow-up (`conversation_id` + `parent_message_id`) hangs its messages under
the parent, so sending from an older node makes a new branch.
"""

from __future__ import annotations

import collections
import datetime
from dataclasses import dataclass, field
from typing import Any

from chat2api.sim.replies import content_text

ROOT_ID = "client-created-root"
# Content types that are not something the model is shown again on the next turn.
UNSEEN_CONTENT = frozenset({"thoughts", "reasoning_recap"})


@dataclass(slots=True)
class Node:
    """One node of the tree; `message` is None only for the root."""

    id: str
    parent: str | None
    message: dict[str, Any] | None
    children: list[str] = field(default_factory=list)

    @property
    def role(self) -> str:
        """The author's role (`""` for the root)."""
        if self.message is None:
            return ""
        author = self.message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        return role if isinstance(role, str) else "user"

    @property
    def text(self) -> str:
        """The message text: string parts joined with newlines, else the `text` field."""
        return "" if self.message is None else content_text(self.message.get("content"))

    @property
    def seen(self) -> bool:
        """Whether the model sees this message as history (not the root, thoughts or recaps)."""
        if self.message is None:
            return False
        content = self.message.get("content")
        kind = content.get("content_type") if isinstance(content, dict) else None
        return kind not in UNSEEN_CONTENT


@dataclass(slots=True)
class Conversation:
    """One kept conversation."""

    id: str
    owner: str
    title: str
    model: str
    root: str
    create_time: float
    update_time: float
    nodes: dict[str, Node] = field(default_factory=dict)
    current_node: str = ""
    # False for a temporary chat kept only so its picture_v2 image can be polled.
    listed: bool = True

    @classmethod
    def start(
        cls, conversation_id: str, owner: str, root: str, title: str, model: str, now: float
    ) -> Conversation:
        """A conversation holding only its root node."""
        conv = cls(conversation_id, owner, title, model, root, now, now, current_node=root)
        conv.nodes[root] = Node(root, None, None)
        return conv

    def append(self, parent: str, messages: list[dict[str, Any]], now: float) -> None:
        """Hang `messages` under `parent`, each under the one before; the last becomes current."""
        for message in messages:
            node = Node(str(message["id"]), parent, message)
            self.nodes[node.id] = node
            self.nodes[parent].children.append(node.id)
            parent = node.id
        self.current_node = parent
        self.update_time = now

    def branch(self, node_id: str) -> list[Node]:
        """The nodes from the root down to `node_id` (inclusive), root first."""
        out: list[Node] = []
        cursor: str | None = node_id
        while cursor is not None:
            node = self.nodes[cursor]
            out.append(node)
            cursor = node.parent
        out.reverse()
        return out

    def seen_branch(self, node_id: str) -> list[tuple[str, str]]:
        """`(role, text)` of the messages the model sees as history when answering under a node."""
        return [(n.role, n.text) for n in self.branch(node_id) if n.seen]

    def detail(self) -> dict[str, Any]:
        """`GET /backend-api/conversation/{id}` (spec 1.8): unix-float times, the full mapping."""
        return {
            "title": self.title,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "mapping": {
                node.id: {
                    "id": node.id,
                    "message": node.message,
                    "parent": node.parent,
                    "children": list(node.children),
                }
                for node in self.nodes.values()
            },
            "moderation_results": [],
            "current_node": self.current_node,
            "conversation_id": self.id,
            "conversation_template_id": None,
            "gizmo_id": None,
            "is_archived": False,
            "safe_urls": [],
            "default_model_slug": self.model,
            "async_status": None,
        }

    def summary(self) -> dict[str, Any]:
        """One item of `GET /backend-api/conversations` (spec 1.8): ISO times, no mapping."""
        return {
            "id": self.id,
            "title": self.title,
            "create_time": iso_time(self.create_time),
            "update_time": iso_time(self.update_time),
            "mapping": None,
            "current_node": None,
            "conversation_template_id": None,
            "gizmo_id": None,
            "is_archived": False,
        }


def iso_time(stamp: float) -> str:
    """`2026-01-05T10:00:00.123456+00:00`, the list endpoint's timestamp form."""
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat(timespec="microseconds")


class ConversationStore:
    """Kept conversations, least recently updated dropped first past `limit`."""

    def __init__(self) -> None:
        """An empty store."""
        self.items: collections.OrderedDict[str, Conversation] = collections.OrderedDict()

    def __len__(self) -> int:
        """How many conversations are kept."""
        return len(self.items)

    def get(self, conversation_id: str, owner: str) -> Conversation | None:
        """The conversation when it exists and `owner` owns it, else None."""
        conv = self.items.get(conversation_id)
        return conv if conv is not None and conv.owner == owner else None

    def keep(self, conv: Conversation, limit: int) -> None:
        """Store (or mark as updated) a conversation, dropping the stalest past `limit`."""
        self.items[conv.id] = conv
        self.items.move_to_end(conv.id)
        while len(self.items) > max(limit, 0):
            self.items.popitem(last=False)

    def owned_by(self, owner: str, order: str = "updated") -> list[Conversation]:
        """The owner's conversations, newest first (by `update_time`, or `create_time`)."""
        # The store is in update order (every update moves a conversation to the end).
        mine = [c for c in reversed(self.items.values()) if c.owner == owner and c.listed]
        if order == "created":
            mine.sort(key=lambda c: c.create_time, reverse=True)
        return mine

    def clear(self) -> None:
        """Forget every conversation."""
        self.items.clear()
