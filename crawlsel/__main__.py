"""``python -m crawlsel`` runs the command line."""

from crawlsel.cli import main

main()
