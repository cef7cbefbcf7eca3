"""chat2api.store."""
