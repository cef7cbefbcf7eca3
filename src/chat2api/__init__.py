"""chat2api: an OpenAI-compatible API served through ChatGPT web accounts."""

__version__ = "0.1.0"
