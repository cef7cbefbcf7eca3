"""Errors raised by the sans-IO protocol decoders.

Whatever bytes arrive, the decoders in this package raise nothing but these
(h11's rule: garbage in, the protocol's own error out). The upstream layer
maps them onto ``chat2api.errors.UpstreamUnavailable`` in one place.

    ProtocolError
    ├── LineTooLong            one SSE line or event grew past the size limit
    ├── MalformedEvent         a payload that is not the JSON we expect
    │   └── InvalidDelta       a delta-v1 op that cannot be applied
    ├── UnsupportedEncoding    a ``delta_encoding`` other than ``v1``
    └── StreamTruncated        the stream ended before the answer finished
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class: the upstream stream cannot be understood."""


class LineTooLong(ProtocolError):
    """An SSE line or event exceeded the decoder's size limit."""


class MalformedEvent(ProtocolError):
    """An SSE data payload is not valid JSON or has the wrong shape."""


class InvalidDelta(MalformedEvent):
    """A delta-v1 record names a path or operation that cannot be applied."""


class UnsupportedEncoding(ProtocolError):
    """The server announced a ``delta_encoding`` this decoder does not speak."""


class StreamTruncated(ProtocolError):
    """The stream ended without the answer finishing and without an error."""
