"""``hwgen compile``: model -> schedule -> Verilog and memory images in a build directory."""

import dataclasses

import click

from hwgen.compiler import hardware_config
from hwgen.compiler.ir import reference
from hwgen.fpga.targets import TARGETS
from hwgen.sim.stimulus import load_inputs

from .. import build_directory
from .console import console, note, stage, table, warn
from .frontend_options import frontend_options
from .models import MODEL_HELP, load_model, model_argument


def config_options(function):
    function = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                            help="Override one hardware parameter (repeatable), e.g. "
                                 "--set tppes=8 or --set join=laggy. Keys: "
                                 + ", ".join(hardware_config.HardwareConfig.names())
                                 + " (docs/architecture.md).")(function)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        help="Hardware configuration file (TOML or JSON).")(function)


def force_option(function):
    return click.option("--force", is_flag=True,
                        help="Replace the output directory even if it is not an hwgen build "
                             "directory (everything in it is deleted).")(function)


def compile_to(model, config, out, calibration_spikes=None, force=False, target=None):
    """:func:`hwgen.build_directory.compile_model`, printing its warnings; with ``target``
    (a name of :data:`hwgen.fpga.targets.TARGETS`) a program whose memories cannot fit the
    target's block RAM is refused before anything is written."""
    fits = []

    def check(program):
        from hwgen.fpga.memory_fit import check_memory_fit
        from hwgen.fpga.targets import get_target
        fits.append((get_target(target), check_memory_fit(program, get_target(target))))

    program, build, warnings = build_directory.compile_model(
        model, config, out, calibration_spikes, force=force,
        check=check if target else None)
    for warning in warnings:
        warn(warning)
    for chosen, fit in fits:
        if fit.likely_misfit:
            warn(f"{chosen.name}: {fit.describe()}: it probably does not fit unless Yosys maps "
                 f"small memories to logic (hwgen synth decides)")
        else:
            console.print(f"fits {chosen.name}'s block RAM: {fit.blocks} of "
                          f"{fit.capacity_blocks} blocks ({fit.bits:,} bits)")
    return program, build


def print_summary(program, build):
    c = program.config
    steps = f"T = {program.timesteps}"
    if program.time_chunks > 1:
        steps += (f" in {program.time_chunks} time chunks of T_c = {program.lanes}"
                  + (" (temporal-sequential)" if program.lanes == 1 else ""))
    if program.recurrent_layers and program.lanes > 1:
        steps += f", recurrent layers in {program.lanes} sub-passes a chunk"
    if program.time_chunk_estimates:
        estimates = ", ".join(f"{lanes}: {cycles:,.0f}"
                              for lanes, cycles in program.time_chunk_estimates.items())
        note(f"time_chunk auto: T_c = {program.lanes}, the fewest estimated cycles per "
             f"inference on the calibration activity (T_c: cycles: {estimates})")
    console.print(f"[bold]{program.model_name}[/bold] on {c.tppes} TPPEs, {steps}, chunk W = "
                  f"{c.chunk}, weights i{c.weight_bits}, accumulators i{c.acc_bits}, "
                  f"membrane i{c.v_bits}" + (f", {c.join} join" if c.join != "dual" else ""))
    rows = []
    sparsity = build.report()["layers"]

    def percent(value):
        return "–" if value is None else f"{100 * value:.1f}%"
    for layer, zeros in zip(program.layers, sparsity):
        counts = [len(n) for n in layer.tppe_neurons]
        # a recurrent layer's own last-step spikes are inputs too (docs/semantics.md 4c),
        # and a kept earlier layer's spikes are a residual layer's
        kept = [p.outputs for name in layer.aux for p in program.layers if p.name == name]
        shape = (f"{layer.inputs - layer.outputs} + {layer.outputs} rec. -> {layer.outputs}"
                 if layer.recurrent else
                 f"{layer.inputs - sum(kept)} + "
                 + " + ".join(f"{n} from {name}" for n, name in zip(kept, layer.aux))
                 + f" -> {layer.outputs}"
                 if kept else f"{layer.inputs} -> {layer.outputs}")
        rows.append((layer.name, shape,
                     f"{min(counts)}..{max(counts)}",
                     f"{max(layer.estimated_cycles):.0f}",
                     percent(zeros["weight_sparsity"]), percent(zeros["input_spike_sparsity"]),
                     percent(zeros["output_spike_sparsity"]),
                     "result buffer" if layer.last else "next layer"))
    console.print(table(None, ["layer", "shape", "neurons / TPPE", "est. cycles (max TPPE)",
                               "zero weights", "silent inputs", "silent outputs",
                               "output to"], rows))
    unrolled = [f"{layer.name} <- {zeros['synapse']}" for layer, zeros in
                zip(program.layers, sparsity) if "(unrolled)" in zeros["synapse"]]
    if unrolled:
        console.print("synapses unrolled into one matrix each (receptive fields as weight "
                      "fibers): " + "; ".join(unrolled))
    kept = [f"{layer.name} adds {layer.adds_current}'s currents" for layer in program.layers
            if layer.adds_current is not None]
    if kept:
        console.print("membrane shortcuts kept, not recomputed (keep_currents): "
                      + "; ".join(kept))
    operands = [f"{layer.name} multiplies by {layer.operands}'s kept currents"
                for layer in program.layers if layer.operands is not None]
    if operands:
        console.print("products by kept currents, per step (Q (K^T V)): "
                      + "; ".join(operands))
    calls, blocks = program.calls()
    if calls:
        console.print(f"address generation: {calls} runs of output positions called from "
                      f"{blocks} stored blocks, chunk indices and slots offset in hardware "
                      f"(call_groups = {program.config.call_groups})")
        masked = program.masked_calls()
        if masked:
            console.print(f"padding as forced-zero masks: {masked} of the calls are border "
                          f"positions, the window rows and columns outside the map masked "
                          f"(border_calls = {program.config.border_calls})")
    in_step = [layer.name for layer in program.layers if layer.in_step]
    if in_step:
        console.print(f"tiles in step (mapping = tiles): {', '.join(in_step)} run from "
                      f"one block in the shared program memory "
                      f"({len(program.shared_entries())} entries, stored once for "
                      f"{program.tppes} TPPEs)")
    if program.shared_shift is not None:
        readers = ", ".join(layer.name for layer in program.layers[1::2])
        console.print(f"shared activation memory (activation_memory = shared): region 1 "
                      f"held once in {program.tppes} banks (chunk c in bank (c >> "
                      f"{program.shared_shift}) mod {program.tppes}), read in step by "
                      f"{readers}; each TPPE holds region 0 only")
    not_in_step = [f"{layer.name} ({layer.not_in_step})" for layer in program.layers
                   if layer.not_in_step is not None]
    if not_in_step:
        console.print("tiled, not in step (each TPPE stores its own program): "
                      + "; ".join(not_in_step))
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
              help="Build directory to write (replaced as a whole, atomically, if it is "
                   "one; any other non-empty directory is refused unless --force).")
@force_option
@config_options
@click.option("--target", type=click.Choice(list(TARGETS)),
              help="Refuse, before writing anything, a model whose memories cannot fit this "
                   "FPGA target's block RAM (as `hwgen synth --target`), and report the "
                   "block RAMs it needs.")
@frontend_options
def command(model, out, force, config_path, overrides, target, frontend):
    build_directory.check_output(out, force=force)
    # --calibration also balances TPPEs, so unlike the other NIR options it is fine for any
    # model; only a NIR model is quantized with it.
    is_nir = model.endswith(".nir")
    # The configuration first: it is cheap to check, and reading a model may not be.
    config = hardware_config.load(config_path, overrides)
    with stage(f"reading {model}" + (" and quantizing it" if is_nir else "")):
        m = load_model(model, frontend if is_nir else dataclasses.replace(frontend,
                                                                          calibration=None))
    calibration = None
    if frontend.calibration:
        with stage(f"running the reference on {frontend.calibration} for activity "
                   f"estimates"):
            stimulus = load_inputs(frontend.calibration).check(m)
            calibration = reference.run(m, stimulus.inputs).spikes
    with stage(f"scheduling {m.name} and generating Verilog"):
        program, build = compile_to(m, config, out, calibration, force=force, target=target)
    print_summary(program, build)
