"""Shared terminal output for the CLI: one rich console, tables, progress bars."""

import json
import sys

from rich.console import Console
import contextlib

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

# Piped output gets 120 columns instead of rich's 80 so that tables stay on one line.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)


def table(title, columns, rows, *, justify=None):
    """A rich table; ``justify`` maps column names to 'right'/'left'/'center'."""
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        result.add_column(column, justify=(justify or {}).get(column, "left"))
    for row in rows:
        result.add_row(*[str(cell) for cell in row])
    return result


def progress():
    """A progress bar for long steps, written to stderr so stdout stays parseable."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=errors, transient=not errors.is_terminal)


@contextlib.contextmanager
def stage(message):
    """A step of unknown length (importing a model, scheduling, generating Verilog): its
    note, then a spinner with the elapsed time on stderr until it ends, so a long step is
    never silent."""
    note(message)
    if not errors.is_terminal:          # a log or a pipe gets the note alone
        yield
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=errors, transient=True) as spinner:
        spinner.add_task(message, total=None)
        yield


def print_json(data):
    sys.stdout.write(json.dumps(data, indent=1, sort_keys=True) + "\n")


def note(message):
    """A progress note on stderr."""
    errors.print(f"[dim]{message}[/dim]")


def warn(message):
    """Something the user should act on that does not stop the command, on stderr."""
    errors.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)
