"""A Python model of the accelerator executing a compiled program, entry by entry.

It walks each TPPE's fiber program exactly as the hardware does: spike fibers in the
fixed-stride chunk format, the inner join by prefix popcounts on both masks, weights read
from each TPPE's packed weight memory at each chunk entry's weight base, T accumulators, the
LIF of docs/semantics.md, kept currents (added at the LIF, or read per step as a product's
operands), and output compression into the next layer's fiber. Agreement
with :mod:`hwgen.compiler.ir.reference` shows the compiler's program (placement, permutation, packing)
is right independently of the RTL; the RTL's unit tests use its pieces as models.
"""

import numpy as np

from hwgen.compiler.ir import LIF
from hwgen.compiler.scheduler.fibers import SpikeFiber, prefix_popcount
from hwgen.compiler.instruction_format import TAG_LAYER_END, TAG_NEURON, walk
from hwgen.compiler.ir import reference
from hwgen.compiler.ir.spike_words import spikes_to_words


def decode_entries(program, p):
    """TPPE p's fiber program as the fetch walks it (blocks called, offsets applied), a
    list of (kind, fields) per layer."""
    layers, current = [], []
    for entry in walk(program.layouts, program.entries[p], len(program.layers),
                      program.config.fetch_width):
        if entry["tag"] == TAG_LAYER_END:
            layers.append(current)
            current = []
        else:
            current.append(("neuron" if entry["tag"] == TAG_NEURON else "chunk", entry))
    return layers


def neuron_lif(mode, theta, current, multiplier=None):
    """Run one neuron in ``mode`` over its T currents (sum + bias) with the reference;
    ``multiplier``: its header's leak multiplier (per-neuron leaks)."""
    op = LIF("n", np.array([theta]), leak=mode.neuron_leak(multiplier), fire=mode.fire,
             reset=mode.reset, order=mode.order, v_bits=mode.v_bits)
    spikes, v = reference.lif(op, np.asarray(current, dtype=np.int64).reshape(1, -1, 1))
    word = sum(int(s) << t for t, s in enumerate(spikes[0, :, 0]))
    return word, int(v[0, 0])


def run_sample(program, input_words):
    """One sample: packed input words (inputs,) -> ({layer: words by neuron}, membranes)."""
    W, T = program.config.chunk, program.timesteps
    fiber = SpikeFiber.encode(input_words, W)
    decoded = [decode_entries(program, p) for p in range(program.tppes)]
    outputs, membranes, kept = {}, None, {}
    owner = {pair: name for name, pair in program.pair_of().items()}
    # each TPPE's kept-current buffers: {buffer: {position in the layer: T currents}}
    currents = [{} for _ in range(program.tppes)]
    for index, plan in enumerate(program.layers):
        mode = program.modes[plan.mode]
        slot_words = {}
        results = {}
        for p in range(program.tppes):
            entries = decoded[p][index]
            position = 0
            neuron = 0              # the neuron's position in the layer on this TPPE
            read_buffer = currents[p].get(plan.current_read, {})
            write_buffer = currents[p].setdefault(plan.current_write, {})
            running = None          # the maximum over a pooling window's rows so far
            while position < len(entries):
                _, header = entries[position]
                position += 1
                acc = np.zeros(T, dtype=np.int64)
                while position < len(entries) and entries[position][0] == "chunk":
                    chunk = entries[position][1]
                    position += 1
                    # a kept layer's chunks (``state``: its pair): its output fiber
                    read = kept[owner[chunk["state"]]] if chunk.get("state") and plan.aux \
                        else fiber
                    smask = read.masks[chunk["chunk"]] if chunk["chunk"] < len(read.masks) \
                        else 0
                    matched = smask & chunk["mask"]
                    for bit in range(W):
                        if matched >> bit & 1:
                            word = read.words[chunk["chunk"] * W + prefix_popcount(smask, bit)]
                            # the entry's run of values starts at its wbase (runs are
                            # stored once per TPPE and shared, scheduler/fibers.py)
                            address = chunk["wbase"] + prefix_popcount(chunk["mask"], bit)
                            # a product's operand: the kept currents there, one per step
                            weight = read_buffer[address] if plan.operands else \
                                program.weights[p][address]
                            acc += weight * ((word >> np.arange(T)) & 1)
                current = acc + header["bias"]
                if header.get("partial"):           # a pooling window's row: max only
                    running = current if running is None else np.maximum(running, current)
                    continue
                if running is not None:
                    current, running = np.maximum(running, current), None
                if plan.current_read and not plan.operands:
                    current = current + read_buffer[neuron]
                if plan.current_write:
                    write_buffer[neuron] = current
                neuron += 1
                word, v = neuron_lif(mode, header["theta"], current, header.get("leak"))
                slot_words[header["slot"]] = word
                results[header["slot"]] = (word, v)
        outputs[plan.name] = [slot_words.get(s, 0) if n >= 0 else 0
                              for s, n in enumerate(plan.output_slots)]
        if plan.last:
            membranes = [results[n][1] for n in range(plan.outputs)]
        else:
            fiber = kept[plan.name] = SpikeFiber.encode(outputs[plan.name], W)
    by_neuron = {}
    for plan in program.layers:
        words = [0] * plan.outputs
        for slot, neuron in enumerate(plan.output_slots):
            if neuron >= 0:
                words[neuron] = outputs[plan.name][slot]
        by_neuron[plan.name] = words
    return by_neuron, membranes


def run(program, spikes):
    """Spikes (samples, T, inputs) -> ({layer: words (samples, neurons)}, membranes)."""
    words = spikes_to_words(spikes)
    per_sample = [run_sample(program, sample) for sample in words]
    layers = {name: np.array([s[0][name] for s in per_sample])
              for name in per_sample[0][0]}
    return layers, np.array([s[1] for s in per_sample])


def run_tiled(tiled, spikes):
    """A tiled convolution (:mod:`hwgen.compiler.scheduler.tiled`) walked as the broadcast
    hardware would: spikes (T, C, H, W) -> (input currents by output slot, {slot: T}, and
    per tile and TPPE the matched pairs).

    Every tile walks the one program; each TPPE resolves each chunk entry at its own pixel
    (a forced-zero mask where it falls outside the map), joins it with its spike mask and
    words, and reads the weights at ``wbase`` of the layer's one weight memory."""
    W = tiled.chunk
    T, C, H, Wd = spikes.shape
    size = H * Wd * tiled.in_chunks * W
    words = np.zeros(size, dtype=np.int64)
    for c in range(C):
        for y in range(H):
            for x in range(Wd):
                words[tiled.input_slot(c, y, x)] = int(
                    (spikes[:, c, y, x].astype(np.int64) << np.arange(T)).sum())
    fiber = SpikeFiber.encode(words.tolist(), W)
    currents, pairs = {}, []
    for tile in tiled.tiles():
        pairs.append([0] * tiled.tppes)
        for p in range(tiled.tppes):
            if tiled.pixel(tile, p) is None:
                continue
            acc, header = None, None
            for kind, fields in tiled.entries + (("neuron", None),):
                if kind == "neuron":
                    if header is not None:
                        currents[tiled.output_slot(header, tile, p)] = acc + header["bias"]
                    acc, header = np.zeros(T, dtype=np.int64), fields
                    continue
                chunk = tiled.resolve(fields, tile, p)
                smask = 0 if chunk is None else fiber.masks[chunk]
                matched = smask & fields["mask"]
                for bit in range(W):
                    if matched >> bit & 1:
                        word = fiber.words[chunk * W + prefix_popcount(smask, bit)]
                        weight = tiled.weights[fields["wbase"]
                                               + prefix_popcount(fields["mask"], bit)]
                        acc += weight * ((word >> np.arange(T)) & 1)
                        pairs[-1][p] += 1
    return currents, pairs
