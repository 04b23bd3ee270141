"""crawlsel: fetch lists of pages on one thread with a selector event loop."""

__version__ = "0.1.0"
