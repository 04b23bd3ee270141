"""A click group whose subcommands are imported when a command line names them.

``crawlsel get -i URL`` has no use for the crawl's or the Redis commands: building
their options is a few milliseconds of every start.  ``--help`` and shell
completion list every command, and so import them all, as before.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """``lazy`` maps a command name to ``"module:attribute"``, imported on first use."""

    def __init__(self, *args: object, lazy: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.lazy.get(cmd_name)
        if where is not None and cmd_name not in self.commands:
            module, _, attribute = where.partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)
