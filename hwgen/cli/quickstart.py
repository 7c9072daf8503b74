"""``hwgen quickstart``: the whole flow on the bundled digits model."""

import sys
import time

import click

from hwgen.compiler import hardware_config
from hwgen.sim.stimulus import Stimulus

from .. import bundled
from .. import build_directory
from .compile import compile_to, force_option, print_summary
from .console import console, note
from .simulate import print_report, run_cosimulation


@click.command("quickstart")
@click.option("-o", "--out", default="hwgen-quickstart", show_default=True,
              type=click.Path(file_okay=False), help="Build directory to write.")
@click.option("--samples", type=int, help="Held-out digits to co-simulate (default: all 450).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one hardware parameter (repeatable).")
@force_option
def command(out, samples, overrides, force):
    """Compile the bundled digits SNN, co-simulate it on Verilator against the integer
    reference, and report bit-exactness, accuracy and cycles per inference."""
    started = time.monotonic()
    build_directory.check_output(out, force=force)
    model = bundled.digits_model()
    inputs, labels = bundled.digits_test_set()
    stimulus = Stimulus(inputs, labels).head(samples)
    console.print(f"[bold]1. compile[/bold] the bundled {model.name} (64 -> 128 -> 10 LIF, "
                  f"T = {model.timesteps}) with the default hardware configuration")
    program, build = compile_to(model, hardware_config.load(None, overrides), out,
                                force=force)
    print_summary(program, build)
    console.print(f"[bold]2. co-simulate[/bold] {len(stimulus)} held-out digits: the generated "
                  f"Verilog on Verilator against the integer reference")
    note("the first run builds the simulator (about 20 s); later runs reuse it")
    result, report = run_cosimulation(build, stimulus)
    print_report(result, report, build)
    console.print(f"done in {time.monotonic() - started:.0f} s. Next: "
                  f"hwgen simulate {out} --inputs YOUR.npz, or read docs/architecture.md")
    if not report["bit_exact"]:
        sys.exit(1)
