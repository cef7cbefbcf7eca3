"""Pure conversions between the OpenAI API and the web app's conversation."""

__all__ = [
    "attachments",
    "completion",
    "generated",
    "messages",
    "models",
    "responses",
    "schemas",
    "sniff",
    "stop",
    "structured",
    "token_worker",
    "tools",
    "usage",
]
