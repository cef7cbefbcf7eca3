"""``python -m chat2api`` runs the CLI."""

from chat2api.cli import main

main()
