"""chat2api.api."""
