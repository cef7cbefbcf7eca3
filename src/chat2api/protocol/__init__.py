"""chat2api.protocol: the sans-IO decoders of the ChatGPT web stream.

``ConversationDecoder`` (``stream``) turns response bytes into the events of
``events``; it sits on ``SSEDecoder`` (``sse``) and ``DeltaState`` (``delta``).
Nothing here awaits or does I/O; every failure is a ``ProtocolError``.
"""

from chat2api.protocol.errors import (
    InvalidDelta,
    LineTooLong,
    MalformedEvent,
    ProtocolError,
    StreamTruncated,
    UnsupportedEncoding,
)
from chat2api.protocol.sse import ServerSentEvent, SSEDecoder
from chat2api.protocol.stream import ConversationDecoder, decode_stream

__all__ = [
    "ConversationDecoder",
    "InvalidDelta",
    "LineTooLong",
    "MalformedEvent",
    "ProtocolError",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamTruncated",
    "UnsupportedEncoding",
    "decode_stream",
]
