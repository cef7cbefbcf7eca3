"""Pure conversions between the OpenAI API and the web app's conversation."""

__all__ = [
    "attachments",
    "completion",
    "generated",
    "messages",
    "models",
    "response_request",
    "response_schemas",
    "responses",
    "schemas",
    "sniff",
    "stop",
    "structured",
    "token_worker",
    "tools",
    "usage",
]
