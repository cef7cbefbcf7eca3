"""chat2api.sim."""
