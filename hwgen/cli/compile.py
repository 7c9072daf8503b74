"""``hwgen compile``: model -> schedule -> Verilog and memory images in a build directory."""

import click

from compiler import hardware_config
from compiler.scheduler.program import compile_program
from sim import reference
from sim.stimulus import load_inputs

from .. import build_directory
from .console import console, note, table
from .models import load_model, model_argument


def config_options(function):
    function = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                            help="Override one hardware parameter (repeatable), e.g. "
                                 "--set tppes=8.")(function)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        help="Hardware configuration file (TOML or JSON).")(function)


def compile_to(model, config, out, calibration_spikes=None, notes=None):
    """Schedule ``model`` on ``config`` and write the build directory; return both."""
    program = compile_program(model, config, calibration_spikes)
    return program, build_directory.write(program, model, out, notes=notes)


def print_summary(program, build):
    c = program.config
    console.print(f"[bold]{program.model_name}[/bold] on {c.tppes} TPPEs, T = "
                  f"{program.timesteps}, chunk W = {c.chunk}, weights i{c.weight_bits}, "
                  f"accumulators i{c.acc_bits}, membrane i{c.v_bits}")
    rows = []
    for layer in program.layers:
        counts = [len(n) for n in layer.tppe_neurons]
        rows.append((layer.name, f"{layer.inputs} -> {layer.outputs}",
                     f"{min(counts)}..{max(counts)}",
                     f"{max(layer.estimated_cycles):.0f}",
                     "result buffer" if layer.last else "next layer"))
    console.print(table(None, ["layer", "shape", "neurons / TPPE", "est. cycles (max TPPE)",
                               "output to"], rows))
    bits = build.manifest["resources"]["memory_bits"]
    console.print(f"on-chip memory: {bits} bits ({bits / 8192:.1f} KiB); "
                  f"Verilog: {build.verilog}")


@click.command("compile")
@model_argument
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Build directory to write (replaced as a whole, atomically).")
@config_options
@click.option("--calibration", "calibration_path", type=click.Path(dir_okay=False),
              help="Sample inputs (.npz) to balance TPPEs on measured activity instead of "
                   "nonzero weights.")
def command(model, out, config_path, overrides, calibration_path):
    """Compile MODEL into Verilog and memory images for the accelerator.

    MODEL is a .hwgen file, or @digits for the bundled digits model. Parameters left at
    'auto' are sized to the model; explicit ones are checked and a model that does not fit
    is refused with the parameter to change.
    """
    m = load_model(model)
    config = hardware_config.load(config_path, overrides)
    calibration = None
    if calibration_path:
        note(f"running the reference on {calibration_path} for activity estimates")
        calibration = reference.run(m, load_inputs(calibration_path).inputs).spikes
    note(f"scheduling {m.name} and generating Verilog")
    program, build = compile_to(m, config, out, calibration)
    print_summary(program, build)
