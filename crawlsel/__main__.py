"""``python -m crawlsel`` runs the command line (plain ``get`` and ``fetch`` lines without click)."""

from crawlsel.quick import main

main()
