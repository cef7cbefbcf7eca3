"""chat2api.convert."""
