"""chat2api.protocol."""
