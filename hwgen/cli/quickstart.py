"""``hwgen quickstart``: the whole flow on a bundled model (the digits MLP by default)."""

import sys
import time

import click

from hwgen.compiler import hardware_config
from hwgen.compiler.ir import LI, LIF, Conv2d, SpikeAnd
from hwgen.sim.stimulus import Stimulus

from .. import bundled
from .. import build_directory
from .compile import compile_to, force_option, print_summary
from .console import console, note
from .simulate import print_report, run_cosimulation


@click.command("quickstart")
@click.option("--model", "model_name", default="@digits", show_default=True,
              type=click.Choice(list(bundled.MODELS)), help="The bundled model to run.")
@click.option("-o", "--out", default="hwgen-quickstart", show_default=True,
              type=click.Path(file_okay=False), help="Build directory to write.")
@click.option("--samples", type=int, help="Held-out digits to co-simulate (default: all 450).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one hardware parameter (repeatable).")
@force_option
def command(model_name, out, samples, overrides, force):
    """Compile a bundled digits SNN (--model; the MLP @digits by default), co-simulate it on
    Verilator against the integer reference, and report bit-exactness, accuracy and cycles
    per inference."""
    started = time.monotonic()
    build_directory.check_output(out, force=force)
    load_model, load_test_set = bundled.MODELS[model_name]
    model = load_model()
    inputs, labels = load_test_set()
    stimulus = Stimulus(inputs, labels, source=f"{model_name}'s held-out split").head(samples)
    settings = (f"--set {', '.join(overrides)} over the default hardware configuration"
                if overrides else "the default hardware configuration")
    console.print(f"[bold]1. compile[/bold] the bundled {model.name} ({_layers(model)}, "
                  f"T = {model.timesteps}) with {settings}")
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


def _layers(model):
    """The input's and each LIF layer's shape, "64 -> 128 -> 10 LIF" for the MLP."""
    types = model.infer()

    def shape(name):
        return "x".join(map(str, types[name].shape))

    sizes = [shape(model.input.name)]
    if any(isinstance(op, SpikeAnd) for op in model.ops):
        # a transformer: its blocks by name, not its twenty-odd LIF ops
        architecture = model.metadata.get("architecture", "a spiking transformer")
        last = [op for op in model.ops if isinstance(op, (LIF, LI))][-1]
        return f"{sizes[0]} -> {architecture} -> {shape(last.name)} outputs"
    for op in model.ops:
        if isinstance(op, LIF):
            kind = "conv " if isinstance(model[model.inputs_of(op.name)[0]], Conv2d) else ""
            sizes.append(f"{kind}{shape(op.name)}")
    return " -> ".join(sizes) + " LIF"
