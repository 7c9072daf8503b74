"""``hwgen inspect``: what a model file holds, op by op."""

import click
import numpy as np

from hwgen.compiler.ir import (LI, LIF, Add, Conv1d, Conv2d, CurrentMatmul, Dense, Flatten, Input,
                               MaxPool2d, Readout, SpikeAnd, SpikeMatmul, SumPool2d, TokenSum)

from hwgen.build_directory import model_warnings
from .console import console, print_json, table, warn
from .frontend_options import frontend_options
from .models import MODEL_HELP, load_model, model_argument


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
        return (f"{_synapse(op)}leak {op.leak.describe()}, fire h "
                f"{'>=' if op.fire == 'ge' else '>'} theta={theta}, reset {op.reset}, "
                f"{op.order.replace('_', ' ')}, v i{op.v_bits}")
    if isinstance(op, (Conv1d, Conv2d)):
        density = np.count_nonzero(op.weight) / op.weight.size
        return (f"{op.out_channels} x {op.in_channels // op.groups} x "
                f"{'x'.join(map(str, op.kernel))} weights i{op.weight_bits}, {density:.1%} "
                f"nonzero, stride {list(op.stride)}, padding {list(op.padding)}, dilation "
                f"{list(op.dilation)}, groups {op.groups}, accumulator i{op.acc_bits}")
    if isinstance(op, SumPool2d):
        return f"sum of {op.kernel[0]}x{op.kernel[1]} windows, stride {list(op.stride)}, " \
               f"padding {list(op.padding)}"
    if isinstance(op, MaxPool2d):
        return f"max of {op.kernel[0]}x{op.kernel[1]} windows, stride {list(op.stride)}, " \
               f"padding {list(op.padding)} (taking no part)"
    if isinstance(op, Add):
        return "element-wise sum of its inputs"
    if isinstance(op, Flatten):
        return f"merge dimensions {op.start_dim}..{op.end_dim}"
    if isinstance(op, LI):
        return f"{_synapse(op)}leak {op.leak.describe()}, no spikes, v i{op.v_bits}"
    if isinstance(op, Readout):
        return op.mode.replace("_", " ")
    if isinstance(op, SpikeAnd):
        return "AND of its two spike inputs (a Hadamard mask)"
    if isinstance(op, TokenSum):
        return "per feature, the count of spiking tokens"
    if isinstance(op, SpikeMatmul):
        return f"K^T V per head ({op.heads}): AND + popcount over tokens"
    if isinstance(op, CurrentMatmul):
        return "Q (K^T V) per head: spikes times per-step integers"
    return ""


def _synapse(op):
    """A current-based neuron's synaptic filter, as the description's first clause."""
    if op.synapse is None:
        return ""
    leak = op.synapse
    form = {"shift": f"i - (i >> {leak.shift})",
            "multiply": f"({leak.multiplier} * i) >> {leak.frac_bits}"}.get(leak.kind, "i")
    return (f"synapse {form} (alpha {leak.beta:g}), {op.synapse_rounding} rounding, "
            f"i i{op.i_bits}; ")


def _number(value):
    if isinstance(value, list):
        return _number(value[0]) if len(set(value)) == 1 else "..".join(map(_number, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def show_frontend(notes):
    console.print(f"[bold]frontend[/bold]: {notes['source_framework']} conventions")
    console.print(f"  dt = {notes['dt']:g} s ({notes['dt_source']})", soft_wrap=True)
    console.print(f"  T = {notes['timesteps']} ({notes['timesteps_source']})", soft_wrap=True)
    if "spike_fn" in notes:
        console.print(f"  spikes per step: {notes['spike_fn']} ({notes['spike_fn_source']})",
                      soft_wrap=True)
    if notes["neurons"]:
        console.print(table(None, ["NIR node", "type", "beta", "input gain", "threshold", "fire",
                                   "reset", "order", "rounding"], [
            (name, entry["nir_type"], _number(entry["beta"]), _number(entry["input_gain"]),
             _number(entry.get("threshold", "")), entry.get("fire", ""),
             entry.get("reset", ""), entry.get("order", "").replace("_", " "),
             entry["rounding"]) for name, entry in notes["neurons"].items()]))
        sources = sorted({(key, entry[f"{key}_source"]) for entry in notes["neurons"].values()
                          for key in ("fire", "reset", "order") if f"{key}_source" in entry})
        for key, source in sources:
            console.print(f"  {key}: {source}", soft_wrap=True)
    for assumption in notes["assumptions"]:
        console.print(f"  - {assumption}", soft_wrap=True)


def _beta(leak):
    """beta -> its quantized value; a range for neurons that decay differently."""
    def span(key, single):
        low, high = leak.get(key, [leak.get(single, 1)] * 2)
        return f"{low:.6g}" if low == high else f"{low:.6g}..{high:.6g}"
    return (f"{span('beta_range', 'beta')} -> {span('beta_quantized_range', 'beta_quantized')}"
            f" (error {leak.get('error', 0):.2g})")


def show_quantization(summary):
    console.print(f"[bold]quantization[/bold]: {summary['method']}", soft_wrap=True)
    rows = []
    for layer in summary["layers"]:
        leak = layer.get("leak", {})
        agreement = layer.get("agreement", {}).get("spike_agreement")
        rows.append((layer["layer"], layer.get("synapse", ""), f"{layer['scale']:.6g}",
                     "yes" if layer["exact_integers"] else "no",
                     layer.get("weight_bits", ""),
                     f"{layer.get('clipped_weights', 0)} / {layer.get('weights', 0)}",
                     _number(layer.get("threshold", {}).get("integer", "")),
                     _beta(leak), layer["v_bits"],
                     "" if agreement is None else f"{agreement:.2%}"))
    console.print(table(None, ["layer", "synapse", "scale", "exact", "w bits", "clipped",
                               "threshold", "beta", "v bits", "spike agreement"], rows))
    calibration = summary.get("calibration")
    if calibration:
        text = f"  calibration: {calibration['samples']} samples"
        if "prediction_agreement" in calibration:
            text += f", float and integer predictions agree on " \
                    f"{calibration['prediction_agreement']:.2%}"
        console.print(text)
    else:
        console.print("  no calibration inputs (--calibration): float-vs-integer agreement "
                      "not measured")


@click.command("inspect", help=f"""Describe MODEL: ops, shapes, bit widths and neuron semantics,
and for a NIR model what the import assumed and how it was quantized.

{MODEL_HELP}""")
@model_argument
@click.option("--json", "as_json", is_flag=True, help="Print the model description as JSON.")
@frontend_options
def command(model, as_json, frontend):
    m = load_model(model, frontend)
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
        if key == "frontend" and isinstance(value, dict) and "neurons" in value:
            show_frontend(value)
        elif key == "quantization" and isinstance(value, dict) and "layers" in value:
            show_quantization(value)
        else:
            console.print(f"[dim]{key}:[/dim] {value}")
    for warning in model_warnings(m):
        warn(warning)

