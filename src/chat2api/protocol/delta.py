"""Delta encoding ``v1``: applying ops to one root object per channel.

Spec: ``chatgpt-web-protocol.md`` 5.3.1. A record is ``{"p", "o", "v", "c"}``:
a JSON Pointer, an operation, a value and a channel. ``c``, ``p`` and ``o``
carry forward from the previous record when missing; ``v`` never does.

Two refinements of plain carry-forward, both from the spec:

* a list-valued ``v`` with no ``o`` is a ``patch`` (bare patches, 2026) unless
  its items do not look like ops;
* a *text cursor* remembers the last ``(channel, path)`` that received a
  string ``append`` (inside a patch too). A record with a string ``v`` and
  neither ``p`` nor ``o`` appends to that cursor, so a bare ``{"v": "…"}``
  after a patch (whose carried ``o`` is ``patch``) or after a metadata merge
  still continues the text.

``patch`` sub-ops use absolute paths and never carry forward. Any op that
cannot be applied raises ``InvalidDelta``; nothing else escapes.

A consumer may ``release`` a channel whose message it will never read (the
echoed user and system turns): its root is dropped and later ops on it are
skipped, until a new root is added on that channel.

Most records of a stream are bare ``{"v": "…"}`` text. While the previous op
was a string append, the string it grew is remembered, and such a record is
appended there directly; any other op forgets it, so the result is always
what resolving the cursor's path would give. ``appended`` and
``appended_at`` tell the consumer what the last record appended, and where.
"""

from __future__ import annotations

from typing import Any

from chat2api.protocol.errors import InvalidDelta

__all__ = ["DeltaState"]

_OPS = frozenset({"add", "replace", "append", "remove", "truncate", "patch"})
_MAX_PATCH_DEPTH = 4
_MAX_CACHED_POINTERS = 256
# Parsed pointers, shared by every stream (the few paths of the protocol): read-only tuples.
_POINTERS: dict[str, tuple[str, ...]] = {}
_MISSING: Any = object()


def parse_pointer(pointer: str) -> list[str]:
    """Split a JSON Pointer (RFC 6901) into unescaped reference tokens."""
    if not pointer:
        return []
    if pointer[0] != "/":
        raise InvalidDelta(f"JSON Pointer must start with '/': {pointer[:80]!r}")
    tokens = pointer[1:].split("/")
    if "~" in pointer:
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in tokens]
    return tokens


def _index(token: str, size: int, *, insert: bool = False) -> int:
    if insert and token == "-":
        return size
    if not (token.isascii() and token.isdigit()):
        raise InvalidDelta(f"bad array index {token[:40]!r}")
    index = int(token)
    if index > size or (index == size and not insert):
        raise InvalidDelta(f"array index {index} out of range (length {size})")
    return index


def _combine(current: Any, value: Any) -> Any:
    """``append``: concatenate strings, extend/push arrays, shallow-merge objects."""
    if isinstance(current, str):
        if isinstance(value, str):
            return current + value
    elif isinstance(current, list):
        if isinstance(value, list):
            current.extend(value)
        else:
            current.append(value)
        return current
    elif isinstance(current, dict) and isinstance(value, dict):
        current.update(value)
        return current
    raise InvalidDelta(
        f"cannot append {type(value).__name__} to {type(current).__name__}",
    )


def _truncate(current: Any, length: Any) -> Any:
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise InvalidDelta("truncate needs a non-negative integer")
    if not isinstance(current, str | list):
        raise InvalidDelta(f"cannot truncate {type(current).__name__}")
    return current[:length]


def _looks_like_ops(value: list[Any]) -> bool:
    return all(isinstance(item, dict) and ("o" in item or "p" in item) for item in value)


class DeltaState:
    """The per-channel root objects of one v1 stream, and the carry-forward state."""

    def __init__(self) -> None:
        self.roots: dict[int, Any] = {}
        self._c = 0
        self._p: str | None = None
        self._o: str | None = None
        self._cursor: tuple[int, str] | None = None
        self._released: dict[int, None] = {}  # a set; an empty dict is the smaller
        self.root_set = False  # the last record set a channel's root (``p`` "")
        # The last record, when it was one plain string append: (channel, path, text).
        self.appended: tuple[int, str, str] | None = None
        # Where the last op appended a string: (channel, path, root, container, key).
        # Valid until any other op; a bare {"v": "..."} then goes straight there.
        self._target: tuple[int, str, Any, Any, Any] | None = None

    @property
    def appended_at(self) -> tuple[Any, Any] | None:
        """After a plain string append: ``(container, key)`` of the string it grew."""
        target = self._target
        return None if self.appended is None or target is None else (target[3], target[4])

    @property
    def channel(self) -> int:
        """The channel of the last record applied."""
        return self._c

    def release(self, c: int) -> None:
        """Drop channel ``c``'s root; skip its ops until a new root is added."""
        if self.roots.pop(c, None) is not None:
            self._released[c] = None
            self._target = None

    def apply(self, record: object) -> Any:
        """Apply one ``event: delta`` record; return the root of its channel."""
        target = self._target
        if target is not None and type(record) is dict and len(record) == 1:
            text = record.get("v")
            if type(text) is str:  # the bulk of a stream: {"v": "..."} continuing the text
                channel, path, root, container, key = target
                current = container[key]
                if type(current) is str:
                    container[key] = current + text
                    self._c, self._p, self._o = channel, path, "append"
                    self.root_set = False
                    self.appended = (channel, path, text)
                    return root
        if not isinstance(record, dict):
            raise InvalidDelta("a delta record must be a JSON object")
        c = record.get("c", _MISSING)
        if c is _MISSING:
            c = self._c
        elif not isinstance(c, int) or isinstance(c, bool):
            raise InvalidDelta("delta channel 'c' must be an integer")
        p = record.get("p", _MISSING)
        o = record.get("o", _MISSING)
        v = record.get("v", _MISSING)
        if o is _MISSING:
            if isinstance(v, list) and _looks_like_ops(v):
                o = "patch"
            elif p is _MISSING and isinstance(v, str) and self._cursor is not None:
                if "c" not in record:
                    c = self._cursor[0]
                p = self._cursor[1]
                o = "append"
            else:
                o = self._o
        if p is _MISSING:
            p = self._p if o != "patch" else ""
        if not isinstance(o, str) or o not in _OPS:
            raise InvalidDelta(f"unknown or missing delta op {o!r:.40}")
        if not isinstance(p, str):
            raise InvalidDelta("missing or non-string delta path 'p'")
        self._c, self._p, self._o = c, p, o
        self.root_set = False
        self.appended = None
        if v is _MISSING and o != "remove":
            raise InvalidDelta(f"delta op {o!r} without a value")
        self._apply(c, p, o, v, 0)
        if o == "append" and isinstance(v, str):
            self.appended = (c, p, v)
        return self.roots.get(c)

    def _apply(self, c: int, p: str, o: str, v: Any, depth: int) -> None:
        self._target = None
        if o == "patch":
            if not isinstance(v, list):
                raise InvalidDelta("patch value must be a list of ops")
            if depth >= _MAX_PATCH_DEPTH:
                raise InvalidDelta("patches nested too deeply")
            for sub in v:
                if not isinstance(sub, dict):
                    raise InvalidDelta("patch sub-op must be an object")
                sp = sub.get("p")
                so = sub.get("o")
                sv = sub.get("v", _MISSING)
                if not isinstance(sp, str) or not isinstance(so, str) or so not in _OPS:
                    raise InvalidDelta("patch sub-op needs a string 'p' and a known 'o'")
                if sv is _MISSING and so != "remove":
                    raise InvalidDelta(f"patch sub-op {so!r} without a value")
                self._apply(c, sp, so, sv, depth + 1)
            return
        if o == "append" and isinstance(v, str):
            self._cursor = (c, p)
        tokens = _POINTERS.get(p)
        if tokens is None:
            tokens = tuple(parse_pointer(p))
            if len(_POINTERS) < _MAX_CACHED_POINTERS:
                _POINTERS[p] = tokens
        if c in self._released:
            if tokens:
                return  # an op on a released message: nobody reads it
            del self._released[c]
        parent: Any
        key: Any
        if not tokens:
            parent, key = self.roots, c
            self.root_set = True
        else:
            if c not in self.roots:
                raise InvalidDelta(f"delta for channel {c} before its root was added")
            parent = self.roots[c]
            for token in tokens[:-1]:
                parent = _child(parent, token)
            key = tokens[-1]
        if isinstance(parent, dict):
            _apply_to_dict(parent, key, o, v)
        elif isinstance(parent, list):
            _apply_to_list(parent, key, o, v)
        else:
            raise InvalidDelta(f"path {p[:80]!r} goes through a {type(parent).__name__}")
        if o == "append" and type(v) is str and tokens:
            slot = key if isinstance(parent, dict) else _index(key, len(parent))
            if type(parent[slot]) is str:
                self._target = (c, p, self.roots[c], parent, slot)


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        try:
            return node[token]
        except KeyError:
            raise InvalidDelta(f"no key {token[:40]!r} on the delta path") from None
    if isinstance(node, list):
        return node[_index(token, len(node))]
    raise InvalidDelta(f"delta path goes through a {type(node).__name__}")


def _apply_to_dict(parent: dict[Any, Any], key: Any, o: str, v: Any) -> None:
    if o == "add" or o == "replace":
        parent[key] = v
    elif o == "append":
        # Appending to a key that is not there yet creates it (seen on metadata lists).
        parent[key] = _combine(parent[key], v) if key in parent else v
    elif o == "remove":
        parent.pop(key, None)
    else:  # truncate
        if key not in parent:
            raise InvalidDelta(f"cannot truncate missing key {str(key)[:40]!r}")
        parent[key] = _truncate(parent[key], v)


def _apply_to_list(parent: list[Any], token: str, o: str, v: Any) -> None:
    if o == "add":
        parent.insert(_index(token, len(parent), insert=True), v)
        return
    index = _index(token, len(parent))
    if o == "replace":
        parent[index] = v
    elif o == "append":
        parent[index] = _combine(parent[index], v)
    elif o == "remove":
        del parent[index]
    else:  # truncate
        parent[index] = _truncate(parent[index], v)
