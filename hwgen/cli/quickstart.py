"""``hwgen quickstart``: the whole flow on the bundled digits model."""

import click

from .console import console


@click.command("quickstart")
def command():
    """Compile the bundled digits model, co-simulate it on Verilator against the reference
    and report bit-exactness, accuracy and cycles."""
    console.print("hwgen quickstart: not yet available (the accelerator generator has not "
                  "landed); run `hwgen reference @digits` for the integer reference.")
