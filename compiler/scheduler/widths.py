"""Resolving a hardware configuration's "auto" widths and depths against a model.

Every width and depth the user left "auto" is filled with what the model needs; every one
the user set is checked against it, and a :class:`~hwgen.errors.FitError` says which layer or
TPPE needs more.
"""

from dataclasses import replace

import numpy as np
import scipy.sparse

from hwgen.errors import FitError

from ..hardware_config import AUTO, MAX_SPIKE_DEPTH, MAX_WEIGHT_DEPTH
from ..ir import Readout
from ..ir.early_exit import check_rule
from ..ir.widths import MAX_ACC_BITS, MAX_V_BITS, MAX_WEIGHT_BITS
from .time_chunk import choose_time_chunk


def next_power_of_two(n):
    return 1 << max(0, (n - 1).bit_length())


def _need(pair):
    """Sort key for (needed value, reason): the first layer or TPPE needing the most wins."""
    return pair[0]


def resolve_widths(config, model, chain, calibration_spikes=None):
    """Fill 'auto' widths from the model and check explicit ones fit it. An 'auto'
    time_chunk of a model with recurrent layers is chosen on ``calibration_spikes``
    (:func:`~.time_chunk.choose_time_chunk`). Returns (config, that choice's estimates:
    {T_c: cycles per inference}, empty unless it was made on calibration spikes)."""
    T = model.timesteps
    needs = {
        "timesteps": (T, f"model {model.name!r} runs {T} time steps"),
        "weight_bits": max(((l.dense.weight_bits, f"{l.where} has "
                             f"{l.dense.weight_bits}-bit weights") for l in chain.layers),
                           key=_need),
        "acc_bits": max(((l.dense.acc_bits, f"{l.where} needs a "
                          f"{l.dense.acc_bits}-bit accumulator") for l in chain.layers),
                        key=_need),
        "v_bits": max(((l.lif.v_bits, f"lif {l.lif.name!r} has a {l.lif.v_bits}-bit membrane")
                       for l in chain.layers), key=_need),
    }
    # The IR allows wider sums than the accelerator holds (ir/widths.py): refuse here, with
    # the op and both numbers, rather than failing later in the gateware.
    limits = {"weight_bits": MAX_WEIGHT_BITS, "acc_bits": MAX_ACC_BITS, "v_bits": MAX_V_BITS}
    for name, limit in limits.items():
        need, why = needs[name]
        if need > limit:
            raise FitError(f"{why}; the accelerator's {name} is at most {limit}")
    values = {}
    for name, (need, why) in needs.items():
        value = getattr(config, name)
        if value == AUTO:
            values[name] = need
        elif name == "timesteps" and value != need:
            raise FitError(f"config timesteps = {value}, but {why}")
        elif value < need:
            raise FitError(f"config {name} = {value} is too small: {why}")
    recurrent = any(l.dense.recurrent for l in chain.layers)
    estimates = {}
    if recurrent and config.time_chunk == AUTO and config.dataflow != "sequential":
        values["time_chunk"], estimates = choose_time_chunk(
            chain, config, T, calibration_spikes, check_rule(config.early_exit) is not None)
    elif config.time_chunk == AUTO:
        values["time_chunk"] = config.auto_time_chunk(T)
    elif T % config.time_chunk:
        raise FitError(f"config time_chunk = {config.time_chunk} must divide the model's "
                       f"{T} time steps")
    lanes = values.get("time_chunk", config.time_chunk)
    if check_rule(config.early_exit) is not None:
        if lanes == T:
            raise FitError(f"config early_exit = {config.early_exit!r} stops after a time "
                           f"chunk, but the model's {T} steps run in one (set time_chunk to "
                           f"a divisor of {T} below it)")
        readout = next((op for op in model.ops if isinstance(op, Readout)), None)
        if readout is None or readout.mode != "spike_count":
            raise FitError(f"config early_exit = {config.early_exit!r} decides on spike "
                           f"counts, but model {model.name!r} has no spike-count readout")
    if config.lif_steps == AUTO:
        values["lif_steps"] = config.auto_lif_steps(lanes)
    config = replace(config, **values)
    if lanes % config.lif_steps:
        raise FitError(f"config lif_steps = {config.lif_steps} must divide the {lanes} time "
                       f"steps processed together (time_chunk)")
    return config, estimates


def _nonzeros(weight):
    """Nonzero entries of a dense or scipy.sparse weight."""
    if scipy.sparse.issparse(weight):
        return int(np.count_nonzero(weight.data))
    return int(np.count_nonzero(weight))


def check_capacity(config, model, chain):
    """Refuse, before scheduling (which takes time and memory in proportion to the
    weights), a model that no configuration of ``config.tppes`` TPPEs can hold."""
    for layer in chain.layers:
        widest = max(layer.inputs, layer.outputs)
        if widest > MAX_SPIKE_DEPTH:
            raise FitError(f"model {model.name!r} does not fit: layer {layer.name!r} has "
                           f"{layer.inputs} inputs and {layer.outputs} outputs; activation "
                           f"buffers hold at most {MAX_SPIKE_DEPTH} (spike_depth)")
    nonzero = sum(_nonzeros(layer.dense.weight) for layer in chain.layers)
    least = -(-nonzero // config.tppes)
    if least > MAX_WEIGHT_DEPTH:
        raise FitError(f"model {model.name!r} does not fit: {nonzero} nonzero weights need at "
                       f"least {least} per TPPE on {config.tppes} TPPEs; a TPPE holds at "
                       f"most {MAX_WEIGHT_DEPTH} (weight_depth); use more TPPEs or prune")


def _operand_spans(plans):
    """(need, why) of the weight bases that address operands (kept currents read as a
    product's weights: compiler/passes/attention.py): a base is a neuron's position in
    its TPPE's part of the operands' layer, so weight_depth must count them."""
    sources = {plan.operands for plan in plans if plan.operands is not None}
    return [(len(neurons), f"TPPE {p} reads {len(neurons)} operands of layer {plan.name!r} "
                           f"through its weight addresses")
            for plan in plans if plan.name in sources
            for p, neurons in enumerate(plan.tppe_neurons)]


def resolve_depths(config, model, plans, per_tppe, weights):
    W = config.chunk
    # A recurrent layer's input positions run on into its state, which has regions of its
    # own (LayerPlan.state_base): a region holds the larger of the two parts.
    widest = max(max(plan.region_widths()) for plan in plans)
    widest = max(widest,
                 max(len(plan.output_slots) for plan in plans if not plan.last)
                 if len(plans) > 1 else 0)
    # each bank of a region holds at least one of its chunks: the write_lanes banks, or
    # the P banks of a shared activation memory (one per TPPE)
    banks, held_by = config.write_lanes, "write lanes"
    if config.activation_memory == "shared":
        banks, held_by = config.tppes, "banks of the shared activation memory"
    needs = {
        "spike_depth": (next_power_of_two(max(widest, W * banks)),
                        f"the widest layer input needs {widest} activation words "
                        f"(padded to {W}-neuron chunks)"
                        + (f" and {banks} {held_by} one chunk each"
                           if widest < W * banks else "")),
        "program_depth": max(((len(entries), f"TPPE {p} needs {len(entries)} fiber-program "
                               f"entries") for p, entries in enumerate(per_tppe)), key=_need),
        "weight_depth": max([(max(1, len(values)), f"TPPE {p} holds {len(values)} weight "
                              f"words (its nonzero weights, each run stored once)")
                             for p, values in enumerate(weights)] + _operand_spans(plans),
                            key=_need),
    }
    values = {}
    for name, (need, why) in needs.items():
        value = getattr(config, name)
        if value == AUTO:
            values[name] = need
        elif value < need:
            hint = "; raise it" if name == "spike_depth" else "; raise it or use more TPPEs"
            if name == "program_depth" and config.mapping not in ("positions", "tiles") and any(
                    len(getattr(kind, "shape", ())) > 1 for kind in model.infer().values()):
                # whole positions per TPPE share one block (blocks.py): the least memory
                hint = "; raise it, use more TPPEs or set mapping=positions or tiles"
            raise FitError(f"model {model.name!r} does not fit: config {name} = {value}, "
                           f"but {why}{hint}")
    config = replace(config, **values)
    if config.spike_depth & (config.spike_depth - 1) or config.spike_depth < W:
        raise FitError(f"config spike_depth = {config.spike_depth} must be a power of two "
                       f"and at least the chunk width {W}")
    return config
