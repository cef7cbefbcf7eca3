"""chat2api.sentinel."""
