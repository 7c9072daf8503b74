"""``hwgen compile``: model -> schedule -> Verilog and memory images in a build directory."""

import dataclasses

import click

from compiler import hardware_config
from compiler.scheduler.program import compile_program
from sim import reference
from sim.stimulus import load_inputs

from .. import build_directory
from .console import console, note, table
from .frontend_options import frontend_options
from .models import MODEL_HELP, load_model, model_argument


def config_options(function):
    function = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                            help="Override one hardware parameter (repeatable), e.g. "
                                 "--set tppes=8.")(function)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        help="Hardware configuration file (TOML or JSON).")(function)


def compile_to(model, config, out, calibration_spikes=None, notes=None):
    """Schedule ``model`` on ``config`` and write the build directory; return both."""
    program = compile_program(model, config, calibration_spikes)
    return program, build_directory.write(
        program, model, out, notes=notes,
        sparsity=layer_sparsity(program, model, calibration_spikes))


def layer_sparsity(program, model, calibration_spikes=None):
    """Per layer: the fraction of zero weights and, measured on the calibration inputs if
    given (else None), the expected fraction of input and output neuron-steps without a
    spike."""
    from compiler.ir import Flatten

    result = []
    for layer in program.layers:
        weights = model[layer.dense].weight
        entry = {"weight_sparsity": round(float((weights == 0).mean()), 4),
                 "input_spike_sparsity": None, "output_spike_sparsity": None}
        if calibration_spikes is not None:
            producer = model.inputs_of(layer.dense)[0]
            while isinstance(model[producer], Flatten):       # same spikes, reshaped
                producer = model.inputs_of(producer)[0]
            entry["input_spike_sparsity"] = round(
                1 - float(calibration_spikes[producer].mean()), 4)
            entry["output_spike_sparsity"] = round(
                1 - float(calibration_spikes[layer.name].mean()), 4)
        result.append(entry)
    return result


def print_summary(program, build):
    c = program.config
    console.print(f"[bold]{program.model_name}[/bold] on {c.tppes} TPPEs, T = "
                  f"{program.timesteps}, chunk W = {c.chunk}, weights i{c.weight_bits}, "
                  f"accumulators i{c.acc_bits}, membrane i{c.v_bits}")
    rows = []
    sparsity = build.report()["layers"]

    def percent(value):
        return "–" if value is None else f"{100 * value:.1f}%"
    for layer, zeros in zip(program.layers, sparsity):
        counts = [len(n) for n in layer.tppe_neurons]
        rows.append((layer.name, f"{layer.inputs} -> {layer.outputs}",
                     f"{min(counts)}..{max(counts)}",
                     f"{max(layer.estimated_cycles):.0f}",
                     percent(zeros["weight_sparsity"]), percent(zeros["input_spike_sparsity"]),
                     percent(zeros["output_spike_sparsity"]),
                     "result buffer" if layer.last else "next layer"))
    console.print(table(None, ["layer", "shape", "neurons / TPPE", "est. cycles (max TPPE)",
                               "zero weights", "silent inputs", "silent outputs",
                               "output to"], rows))
    if sparsity and sparsity[0]["input_spike_sparsity"] is None:
        console.print("silent inputs / outputs: the fraction of neuron-steps without a "
                      "spike, expected from --calibration inputs (none given)")
    bits = build.manifest["resources"]["memory_bits"]
    console.print(f"on-chip memory: {bits} bits ({bits / 8192:.1f} KiB); "
                  f"Verilog: {build.verilog}")


@click.command("compile", help=f"""Compile MODEL into Verilog and memory images for the
accelerator.

Parameters left at 'auto' are sized to the model; explicit ones are checked, and a model
that does not fit is refused with the parameter to change. With --calibration, TPPEs are
balanced on the activity measured on those inputs (and a NIR model is also quantized on
them).

{MODEL_HELP}""")
@model_argument
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Build directory to write (replaced as a whole, atomically).")
@config_options
@frontend_options
def command(model, out, config_path, overrides, frontend):
    # --calibration also balances TPPEs, so unlike the other NIR options it is fine for any
    # model; only a NIR model is quantized with it.
    is_nir = model.endswith(".nir")
    m = load_model(model, frontend if is_nir else dataclasses.replace(frontend,
                                                                      calibration=None))
    config = hardware_config.load(config_path, overrides)
    calibration = None
    if frontend.calibration:
        note(f"running the reference on {frontend.calibration} for activity estimates")
        calibration = reference.run(m, load_inputs(frontend.calibration).inputs).spikes
    note(f"scheduling {m.name} and generating Verilog")
    program, build = compile_to(m, config, out, calibration)
    print_summary(program, build)
