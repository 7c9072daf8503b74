"""``hwgen``: the command group and its error handling.

Every command is a thin layer over the packages. Bad input surfaces as a
:class:`~hwgen.errors.HwgenError`, which is printed as one line (``Error: ...``) with exit
status 1; click's own usage errors exit with 2.
"""

import signal
import warnings

import click
from amaranth.hdl import UnusedElaboratable

from hwgen.errors import HwgenError

from . import compile, doctor, flash, inspect, quickstart, reference, run, simulate, sweep, synth


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HwgenError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwgen")
def cli():
    """Compile quantized spiking neural networks into a verified FPGA accelerator.

    \b
    Typical session:
      hwgen compile model.hwgen -o build/
      hwgen simulate build/ --inputs x.npz
      hwgen synth build/ --target icebreaker
      hwgen flash build/ --board icebreaker
      hwgen run build/ --port /dev/ttyUSB1 --inputs x.npz
      hwgen quickstart          # the whole flow on the bundled digits model
      hwgen sweep @digits --grid tppes=1,2,4 --grid chunk=8,16 -o sweep/
    """


for command in (compile.command, simulate.command, synth.command, flash.command, run.command,
                quickstart.command, reference.command, inspect.command, doctor.command,
                sweep.command):
    cli.add_command(command)


_received = []           # the signals that interrupted this process


def _interrupted(signum, frame):
    """SIGINT and SIGTERM unwind the stack like an exception, so every ``finally`` and
    context manager runs: staging and temporary directories are removed
    (hwgen.atomic). Elaboratables built but never elaborated because of the interruption
    are expected, so Amaranth's warnings about them are silenced rather than printed."""
    warnings.simplefilter("ignore", UnusedElaboratable)
    _received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def main():
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupted)
    try:
        cli(prog_name="hwgen")
    except Exception:
        # Code that catches exceptions broadly (Amaranth's signature checks do) can swallow
        # the interruption and fail in its place; the stack has unwound all the same, and
        # the signal, not that failure, decides how the process ends.
        if _received:
            raise SystemExit(128 + signal.SIGTERM if signal.SIGTERM in _received
                             else 1) from None
        raise
