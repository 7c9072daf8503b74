"""The compiled program: what each TPPE computes, as memory images, for one model.

:func:`compile_program` legalises a model into a chain of fused dense + LIF layers,
resolves the hardware configuration against it, assigns every layer's output neurons to
TPPEs, places their outputs in the next layer's spike fiber, and writes each TPPE's
**fiber program**: a sequential list of entries it walks once per inference,

    per layer:  [NEURON header, CHUNK entry, CHUNK entry, ...] per neuron, then LAYER_END

plus its packed nonzero weights. A NEURON header carries the neuron's threshold, bias and
output slot; a CHUNK entry one nonzero chunk of its weight fiber (chunk index, mask, and
the address of the chunk's first weight in the TPPE's weight memory).

Output placement (why the next layer's input order is permuted): TPPE p writes its
neurons' outputs to the contiguous slots ``[base_p, base_p + n_p)`` of the next layer's
input, with ``base_p`` a multiple of W, so each TPPE compresses its outputs into whole
chunks of the next fiber on its own. The next layer's weights are laid out in that same
slot order (a permutation of a dot product changes nothing). The last layer writes its
outputs by natural index into the result buffer instead.
"""

import hashlib
import json
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import FitError
from ..hardware_config import AUTO
from ..passes.legalise import legalise
from .assign import neuron_costs, schedule_layer
from .fibers import WeightFiber
from .layout import BitLayout, Field

TAG_CHUNK, TAG_NEURON, TAG_LAYER_END = 0, 1, 2


MAX_ACC_BITS = 32
"""The widest accumulator the hardware builds (hwgen.geometry checks the same bound)."""


def bits_for(count):
    """Bits to index ``count`` things (at least 1)."""
    return max(1, (count - 1).bit_length())


def next_power_of_two(n):
    return 1 << max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class NeuronMode:
    """The static neuron attributes of one or more layers; the LIF stage is generated
    for exactly the modes a program uses."""

    leak: dict
    fire: str
    reset: str
    order: str
    v_bits: int

    @classmethod
    def of(cls, lif):
        return cls(lif.leak.to_json(), lif.fire, lif.reset, lif.order, lif.v_bits)

    def to_json(self):
        return {"leak": self.leak, "fire": self.fire, "reset": self.reset,
                "order": self.order, "v_bits": self.v_bits}


@dataclass
class LayerPlan:
    """One layer as scheduled.

    ``input_slots[s]`` is the input neuron (index in the previous layer or the model
    input) whose word sits in slot s of this layer's spike fiber, -1 for padding;
    ``output_slots`` likewise for this layer's outputs. ``tppe_neurons[p]`` lists the
    neurons TPPE p computes, in order.
    """

    name: str
    dense: str
    inputs: int
    outputs: int
    mode: int
    last: bool
    input_slots: list
    output_slots: list
    tppe_neurons: list
    estimated_cycles: list

    def to_json(self):
        return {"name": self.name, "dense": self.dense, "inputs": self.inputs,
                "outputs": self.outputs, "mode": self.mode, "last": self.last,
                "input_slots": self.input_slots, "output_slots": self.output_slots,
                "tppe_neurons": self.tppe_neurons, "estimated_cycles": self.estimated_cycles}


@dataclass
class Program:
    config: object
    model_name: str
    model_sha256: str
    timesteps: int
    input_size: int
    output_size: int
    layers: list
    modes: list
    entries: list            # per TPPE: packed fiber-program entries
    weights: list            # per TPPE: nonzero weights (signed)
    descriptors: list        # per layer: packed layer descriptor
    layouts: dict = field(default_factory=dict)

    @property
    def tppes(self):
        return len(self.entries)

    def memory_images(self):
        """{name: (width, [words])} for every initialised memory."""
        images = {"layers": (self.layouts["layer"].width, self.descriptors)}
        w_bits = self.config.weight_bits
        for p in range(self.tppes):
            images[f"tppe{p}_program"] = (self.layouts["entry"].width, self.entries[p])
            images[f"tppe{p}_weights"] = (w_bits, [w & ((1 << w_bits) - 1)
                                                   for w in self.weights[p]])
        return images

    def memory_bits(self):
        """Bits of every on-chip memory the generated design holds, by memory."""
        c = self.config
        memories = {
            "layers": (len(self.descriptors), self.layouts["layer"].width),
            "results": (self.output_size, self.timesteps + c.v_bits),
        }
        for p in range(self.tppes):
            memories[f"tppe{p}_program"] = (c.program_depth, self.layouts["entry"].width)
            memories[f"tppe{p}_weights"] = (c.weight_depth, c.weight_bits)
            memories[f"tppe{p}_spike_words"] = (2 * c.spike_depth, self.timesteps)
            memories[f"tppe{p}_spike_masks"] = (2 * c.spike_depth // c.chunk, c.chunk)
        return memories

    def summary(self):
        """JSON-able description (no memory contents)."""
        return {"model": self.model_name, "model_sha256": self.model_sha256,
                "timesteps": self.timesteps, "inputs": self.input_size,
                "outputs": self.output_size, "config": self.config.to_json(),
                "modes": [m.to_json() for m in self.modes],
                "layers": [layer.to_json() for layer in self.layers],
                "entries_per_tppe": [len(e) for e in self.entries],
                "weights_per_tppe": [len(w) for w in self.weights],
                "layouts": {name: [[f.name, f.width, f.signed] for f in layout.fields]
                            for name, layout in self.layouts.items()}}


def _need(pair):
    """Sort key for (needed value, reason): the first layer or TPPE needing the most wins."""
    return pair[0]


def _resolve_widths(config, model, chain):
    """Fill 'auto' widths from the model and check explicit ones fit it."""
    T = model.timesteps
    needs = {
        "timesteps": (T, f"model {model.name!r} runs {T} time steps"),
        "weight_bits": max(((l.dense.weight_bits, f"dense {l.dense.name!r} has "
                             f"{l.dense.weight_bits}-bit weights") for l in chain.layers),
                           key=_need),
        "acc_bits": max(((l.dense.acc_bits, f"dense {l.dense.name!r} needs a "
                          f"{l.dense.acc_bits}-bit accumulator") for l in chain.layers),
                        key=_need),
        "v_bits": max(((l.lif.v_bits, f"lif {l.lif.name!r} has a {l.lif.v_bits}-bit membrane")
                       for l in chain.layers), key=_need),
    }
    values = {}
    for name, (need, why) in needs.items():
        value = getattr(config, name)
        if value == AUTO:
            values[name] = need
        elif name == "timesteps" and value != need:
            raise FitError(f"config timesteps = {value}, but {why}")
        elif value < need:
            raise FitError(f"config {name} = {value} is too small: {why}")
    # The IR allows wider sums (48 bits) than the accelerator's accumulators.
    if values.get("acc_bits", 0) > MAX_ACC_BITS:
        raise FitError(f"{needs['acc_bits'][1]}, but the accelerator's acc_bits is at most "
                       f"{MAX_ACC_BITS}; reduce the layer's weights or bias")
    if T > 16:
        raise FitError(f"model {model.name!r} runs {T} time steps; the accelerator supports "
                       f"1 to 16")
    if config.lif_steps == AUTO:
        values["lif_steps"] = config.auto_lif_steps(T)
    config = replace(config, **values)
    if T % config.lif_steps:
        raise FitError(f"config lif_steps = {config.lif_steps} must divide the model's "
                       f"{T} time steps")
    return config


def _activity(trace_spikes, source_name, size):
    """Fraction of samples in which each neuron of ``source_name`` spiked at least once."""
    if trace_spikes is None:
        return None
    return trace_spikes[source_name].any(axis=1).mean(axis=0)[:size]


def model_sha256(model):
    from ..frontends import native
    return hashlib.sha256(native.dumps(model)).hexdigest()


def compile_program(model, config, calibration_spikes=None):
    """Schedule ``model`` onto ``config`` (a :class:`~compiler.hardware_config.HardwareConfig`).

    ``calibration_spikes`` ({op name: (samples, T, neurons)} from a reference run) lets the
    scheduler balance expected matched pairs instead of nonzero weights. Returns a
    :class:`Program`; raises :class:`FitError` if the model does not fit the configuration
    and :class:`UnsupportedError` if it uses ops the accelerator cannot run.
    """
    chain = legalise(model)
    config = _resolve_widths(config.check(), model, chain)
    W, P, T = config.chunk, config.tppes, model.timesteps
    lif_cycles = T // config.lif_steps

    modes, plans = [], []
    per_tppe = [[] for _ in range(P)]           # (kind, fields) entries
    weights = [[] for _ in range(P)]            # nonzero weights, in walk order
    input_size = chain.input.shape[0]
    slots = list(range(input_size)) + [-1] * (-input_size % W)
    source = chain.input.name
    for index, layer in enumerate(chain.layers):
        last = index == len(chain.layers) - 1
        mode = NeuronMode.of(layer.lif)
        if mode not in modes:
            modes.append(mode)
        activity = _activity(calibration_spikes, source, layer.inputs)
        assignment = schedule_layer(
            neuron_costs(layer.dense.weight, W, lif_cycles, activity), P)
        if last:
            output_slots = list(range(layer.outputs))
            slot_of = {n: n for n in range(layer.outputs)}
        else:
            output_slots, slot_of = [], {}
            for neurons in assignment.neurons:
                for n in neurons:
                    slot_of[n] = len(output_slots)
                    output_slots.append(n)
                output_slots += [-1] * (-len(output_slots) % W)
        permuted = np.zeros((layer.outputs, len(slots)), dtype=np.int64)
        for s, k in enumerate(slots):
            if k >= 0:
                permuted[:, s] = layer.dense.weight[:, k]
        bias = layer.dense.bias if layer.dense.bias is not None else np.zeros(layer.outputs,
                                                                             dtype=np.int64)
        for p, neurons in enumerate(assignment.neurons):
            for j, n in enumerate(neurons):
                fiber = WeightFiber.encode(permuted[n], W)
                chunk_last = not last and (j == len(neurons) - 1 or (j + 1) % W == 0)
                per_tppe[p].append(("neuron", {
                    "theta": int(layer.lif.threshold[n]), "bias": int(bias[n]),
                    "slot": slot_of[n], "empty": int(not fiber.entries),
                    "chunk_last": int(chunk_last)}))
                base = len(weights[p])
                for i, (c, mask) in enumerate(fiber.entries):
                    per_tppe[p].append(("chunk", {"chunk": c, "mask": mask, "wbase": base,
                                                  "last": int(i == len(fiber.entries) - 1)}))
                    base += bin(mask).count("1")
                weights[p].extend(fiber.values)
            per_tppe[p].append(("layer_end", {}))
        plans.append(LayerPlan(layer.name, layer.dense.name, layer.inputs, layer.outputs,
                               modes.index(mode), last, slots, output_slots,
                               [list(ns) for ns in assignment.neurons],
                               [round(float(c), 1) for c in assignment.estimated_cycles]))
        slots, source = output_slots, layer.name

    output_size = chain.layers[-1].outputs
    config = _resolve_depths(config, model, plans, per_tppe, weights)
    layouts = make_layouts(config, len(modes), output_size)
    entries = [[pack_entry(layouts, kind, values) for kind, values in tppe]
               for tppe in per_tppe]
    descriptors = [layouts["layer"].pack(mode=plan.mode, last=int(plan.last))
                   for plan in plans]
    return Program(config, model.name, model_sha256(model), T, input_size, output_size,
                   plans, modes, entries, weights, descriptors, layouts)


def _resolve_depths(config, model, plans, per_tppe, weights):
    W = config.chunk
    widest = max(max(len(plan.input_slots) for plan in plans),
                 max(len(plan.output_slots) for plan in plans if not plan.last)
                 if len(plans) > 1 else 0)
    needs = {
        "spike_depth": (next_power_of_two(max(widest, W)),
                        f"the widest layer input needs {widest} activation words "
                        f"(padded to {W}-neuron chunks)"),
        "program_depth": max(((len(entries), f"TPPE {p} needs {len(entries)} fiber-program "
                               f"entries") for p, entries in enumerate(per_tppe)), key=_need),
        "weight_depth": max(((max(1, len(values)), f"TPPE {p} holds {len(values)} nonzero "
                              f"weights") for p, values in enumerate(weights)), key=_need),
    }
    values = {}
    for name, (need, why) in needs.items():
        value = getattr(config, name)
        if value == AUTO:
            values[name] = need
        elif value < need:
            hint = ("; raise it or use more TPPEs" if name != "spike_depth"
                    else "; raise it")
            raise FitError(f"model {model.name!r} does not fit: config {name} = {value}, "
                           f"but {why}{hint}")
    config = replace(config, **values)
    if config.spike_depth & (config.spike_depth - 1) or config.spike_depth < W:
        raise FitError(f"config spike_depth = {config.spike_depth} must be a power of two "
                       f"and at least the chunk width {W}")
    return config


def make_layouts(config, modes, output_size):
    """The bit layouts of fiber-program entries and layer descriptors for ``config``."""
    W = config.chunk
    chunk_bits = bits_for(config.spike_depth // W)
    # A slot is read by the output compressor as (chunk, offset within the chunk), so it
    # holds both fields in full, even when a buffer region is a single chunk and the chunk
    # index is a 1-bit 0: a slot of only log2(spike_depth) bits once left the compressor no
    # chunk bits, which put the region bit of its write addresses in the chunk's place.
    slot_bits = max(bits_for(output_size), bits_for(W) + chunk_bits)
    # A chunk entry carries its weights' base address: the compiler knows it, and summing
    # mask popcounts in hardware put an adder behind the program memory's output.
    chunk = [Field("chunk", chunk_bits), Field("mask", W), Field("last", 1),
             Field("wbase", bits_for(config.weight_depth))]
    neuron = [Field("theta", max(1, config.v_bits - 1)), Field("bias", config.acc_bits, True),
              Field("slot", slot_bits), Field("empty", 1), Field("chunk_last", 1)]
    payload = max(sum(f.width for f in chunk), sum(f.width for f in neuron))
    return {
        "entry": BitLayout("entry", [Field("tag", 2), Field("payload", payload)]),
        "chunk_entry": BitLayout("chunk_entry", chunk),
        "neuron_entry": BitLayout("neuron_entry", neuron),
        "layer": BitLayout("layer", [Field("mode", bits_for(modes)), Field("last", 1)]),
    }


def pack_entry(layouts, kind, values):
    if kind == "chunk":
        return layouts["entry"].pack(tag=TAG_CHUNK,
                                     payload=layouts["chunk_entry"].pack(**values))
    if kind == "neuron":
        return layouts["entry"].pack(tag=TAG_NEURON,
                                     payload=layouts["neuron_entry"].pack(**values))
    return layouts["entry"].pack(tag=TAG_LAYER_END)


def write_hex(path, width, words):
    """A memory image: one word per line, hex, zero-padded to the width."""
    digits = max(1, -(-width // 4))
    path.write_text("".join(f"{w:0{digits}x}\n" for w in words))


def summary_json(program):
    return json.dumps(program.summary(), indent=1, sort_keys=True) + "\n"
