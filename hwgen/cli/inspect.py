"""``hwgen inspect``: what a model file holds, op by op."""

import click
import numpy as np

from compiler.ir import LIF, Dense, Input, Readout

from .console import console, print_json, table
from .models import load_model, model_argument


def describe(op):
    if isinstance(op, Input):
        if op.encoding == "if":
            return f"integers 0..{op.threshold}, IF encoder (threshold {op.threshold})"
        return "spike trains"
    if isinstance(op, Dense):
        density = np.count_nonzero(op.weight) / op.weight.size
        bias = "bias" if op.bias is not None else "no bias"
        return (f"{op.outputs}x{op.inputs} weights i{op.weight_bits}, {density:.1%} nonzero, "
                f"{bias}, accumulator i{op.acc_bits} (bound {op.accumulator_bound()})")
    if isinstance(op, LIF):
        lo, hi = int(op.threshold.min()), int(op.threshold.max())
        theta = str(lo) if lo == hi else f"{lo}..{hi}"
        return (f"leak {op.leak.describe()}, fire h {'>=' if op.fire == 'ge' else '>'} "
                f"theta={theta}, reset {op.reset}, {op.order.replace('_', ' ')}, v i{op.v_bits}")
    if isinstance(op, Readout):
        return op.mode.replace("_", " ")
    return ""


@click.command("inspect")
@model_argument
@click.option("--json", "as_json", is_flag=True, help="Print the model description as JSON.")
def command(model, as_json):
    """Describe MODEL: ops, shapes, bit widths and neuron semantics.

    MODEL is a .hwgen file, or @digits for the bundled digits model.
    """
    m = load_model(model)
    types = m.infer()
    if as_json:
        print_json({"name": m.name, "timesteps": m.timesteps, "metadata": m.metadata,
                    "ops": [{"name": op.name, "type": op.type_name,
                             "inputs": m.inputs_of(op.name), "output": str(types[op.name]),
                             "attributes": op.attributes()} for op in m.ops]})
        return
    console.print(f"[bold]{m.name}[/bold]: T = {m.timesteps} steps, {len(m)} ops")
    console.print(table(None, ["op", "type", "output", "details"], [
        (op.name, op.type_name, str(types[op.name]), describe(op))
        for op in m.ops]))
    for key, value in sorted(m.metadata.items()):
        console.print(f"[dim]{key}:[/dim] {value}")

