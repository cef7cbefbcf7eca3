"""chat2api.upstream."""
