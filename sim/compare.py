"""Judging a recorded RTL run against the integer reference, layer by layer.

The co-simulation (:mod:`hwgen.sim.native`'s C++ driver, or the cocotb testbench
:mod:`hwgen.sim.testbench`) records every word each layer writes, by output slot;
the program summary maps slots back to neurons. Every layer's spikes, and the result
words and final membranes of the output layer, must equal the reference's exactly. The
first difference is reported as (sample, layer, neuron, step).
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from hwgen.compiler.passes.legalise import legalise_for
from hwgen.compiler.ir.spike_words import words_to_spikes
from hwgen.compiler.scheduler.assign import ROW_BLOCK, walk_steps
from hwgen.gateware.core_interface import unpack_results



@dataclass
class Mismatch:
    """The first difference in a sample, between the hardware (the RTL or a board) and the
    reference: a spike (``step`` set) or ``what`` else differs."""

    sample: int
    layer: str
    neuron: int
    step: int = None
    expected: int = None
    got: int = None
    what: str = "spike"

    def describe(self):
        where = f"sample {self.sample}, layer {self.layer!r}" + (
            f", neuron {self.neuron}" if self.neuron >= 0 else "")
        if self.what == "spike":
            return (f"{where}, step {self.step}: expected spike {self.expected}, "
                    f"the hardware gave {self.got}")
        return f"{where}: {self.what} (expected {self.expected}, the hardware gave {self.got})"

    def to_json(self):
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Verdict:
    """Per sample, the first mismatch (or None); the RTL's spikes per layer."""

    first_mismatch: list
    rtl_spikes: dict = field(default_factory=dict)      # layer -> (samples, T, neurons)
    rtl_membranes: np.ndarray = None                     # output layer, (samples, neurons)
    mismatching_neurons: dict = field(default_factory=dict)   # layer -> count over samples

    @property
    def mismatching_samples(self):
        return [s for s, m in enumerate(self.first_mismatch) if m is not None]

    @property
    def bit_exact(self):
        return not self.mismatching_samples


def _first_spike_difference(sample, layer, expected, got):
    """First (neuron, step) where two (T, neurons) spike arrays differ, neuron-major."""
    differ = np.argwhere((expected != got).T)
    if not len(differ):
        return None
    neuron, step = (int(x) for x in differ[0])
    return Mismatch(sample, layer, neuron, step, int(expected[step, neuron]),
                    int(got[step, neuron]))


def compare(program, trace, observed):
    """``program``: the program summary (program.json); ``trace``: the reference run;
    ``observed``: the testbench recording (events, results) for the same samples."""
    T = program["timesteps"]
    lanes = program["config"]["time_chunk"]
    layers = program["layers"]
    samples = len(observed["cycles"])
    v_bits = program["config"]["v_bits"]
    events = observed["events"]
    verdict = Verdict([None] * samples)

    for index, plan in enumerate(layers):
        name, neurons = plan["name"], plan["outputs"]
        neuron_of_slot = np.array(plan["output_slots"], dtype=np.int64)
        rtl = np.zeros((samples, T, neurons), dtype=np.uint8)
        mismatching = 0
        # events carry the pass (time chunk x layers + layer)
        layer_events = events[events[:, 1] % len(layers) == index] if len(events) else events
        for sample in range(samples):
            own = layer_events[layer_events[:, 0] == sample] if len(layer_events) else \
                layer_events
            seen, written = set(), []
            problem = None
            for _, layer_pass, slot, word, _ in own:
                chunk, slot = int(layer_pass) // len(layers), int(slot)
                neuron = int(neuron_of_slot[slot]) if slot < len(neuron_of_slot) else -1
                if neuron < 0:
                    problem = problem or Mismatch(sample, name, slot, what="write to a "
                                                  "padding or out-of-range slot",
                                                  expected="none", got=f"slot {slot}")
                    continue
                if (neuron, chunk) in seen and not plan["last"]:
                    problem = problem or Mismatch(sample, name, neuron, what="written twice")
                seen.add((neuron, chunk))
                written.append((neuron, chunk, int(word)))
            if written:
                neuron, chunk, word = np.array(written, dtype=np.int64).T
                bits = words_to_spikes(word[np.newaxis], lanes)[0]     # (lanes, writes)
                for j in range(lanes):
                    rtl[sample, chunk * lanes + j, neuron] = bits[j]
            expected = trace.spikes[name][sample]
            if trace.steps is not None:
                # nothing runs after an early exit: the copy of the model's input that a
                # layer reading it later keeps (a layer named as the input) neither
                expected = np.where(np.arange(T)[:, None] < trace.steps[sample], expected, 0)
            difference = _first_spike_difference(sample, name, expected, rtl[sample])
            mismatching += int(np.any(expected != rtl[sample], axis=0).sum())
            problem = problem or difference
            if problem and verdict.first_mismatch[sample] is None:
                verdict.first_mismatch[sample] = problem
        verdict.rtl_spikes[name] = rtl
        verdict.mismatching_neurons[name] = mismatching

    # Every sample ran the steps the reference ran (all T, or up to the early exit).
    expected_steps = trace.steps if trace.steps is not None else np.full(samples, T)
    for sample, (ran, expected) in enumerate(zip(observed["steps"], expected_steps)):
        if ran != expected and verdict.first_mismatch[sample] is None:
            verdict.first_mismatch[sample] = Mismatch(
                sample, layers[-1]["name"], -1, what="ran a different number of steps",
                expected=int(expected), got=int(ran))

    # The result stream must agree with the trace and carry the final membranes.
    last = layers[-1]["name"]
    results = np.asarray(observed["results"], dtype=np.int64)
    result_spikes, membranes = unpack_results(results, T, v_bits, lanes)
    verdict.rtl_membranes = membranes
    expected_spikes = trace.spikes[last]
    for sample in range(samples):
        if verdict.first_mismatch[sample] is not None:
            continue
        for neuron in range(membranes.shape[1]):
            differ = np.flatnonzero(result_spikes[sample, :, neuron]
                                    != expected_spikes[sample, :, neuron])
            if len(differ):
                step = int(differ[0])
                verdict.first_mismatch[sample] = Mismatch(
                    sample, last, neuron, step, int(expected_spikes[sample, step, neuron]),
                    int(result_spikes[sample, step, neuron]),
                    what="result word differs from the reference at a step")
                break
            if membranes[sample, neuron] != trace.membranes[last][sample, neuron]:
                verdict.first_mismatch[sample] = Mismatch(
                    sample, last, neuron, what="final membrane differs from the reference",
                    expected=int(trace.membranes[last][sample, neuron]),
                    got=int(membranes[sample, neuron]))
                break
    return verdict


def _recurrent_active(active, own, lanes):
    """The active inputs of a recurrent layer's sub-passes: (samples, chunks x T_c, K +
    N) and T_c. Sub-pass j of chunk c walks the chunk's input and its own spikes of
    sub-pass j - 1: for j = 0 the whole last chunk's (none before chunk 0); for j > 0 an
    intermediate result whose steps before j are final, so the layer's own spikes in
    those steps are the least it holds (a lower bound, as the rest is not known here).
    With T_c = 1 this is the step before (docs/semantics.md 4c)."""
    samples, chunks, _ = active.shape
    own = own.reshape(samples, chunks, lanes, -1).astype(bool)
    settled = np.logical_or.accumulate(own, axis=2)          # steps 0..j of the chunk
    last_chunk = np.concatenate([np.zeros_like(settled[:, :1, -1]),
                                 settled[:, :-1, -1]], axis=1)
    state = np.concatenate([last_chunk[:, :, None], settled[:, :, :-1]], axis=2)
    inputs = np.repeat(active[:, :, None], lanes, axis=2)
    both = np.concatenate([inputs, state.astype(np.int64)], axis=3)
    return both.reshape(samples, chunks * lanes, -1), lanes


def ideal_bounds(program, model, trace, chain=None):
    """(samples, layers): the ideal bound of each layer, in cycles. ``chain``: the
    program's :class:`~hwgen.compiler.passes.legalise.LayerChain` if the caller has it
    (legalising unrolls every convolution again), else made here.

    A TPPE processes at most one matched (active input, nonzero weight) pair per cycle, so
    a layer cannot take fewer cycles than the largest number of matched pairs any one TPPE
    must process (DESIGN.md section 4); with T / T_c time chunks, an input is active in a
    chunk if it spikes in one of the chunk's steps, and the layer's bound is the sum of its
    chunks' bounds, over the chunks run (all, unless the trace ran with an early exit).
    A recurrent layer runs T_c sub-passes per chunk (docs/architecture.md, "Recurrent
    layers"), each a walk of its input and its own spikes: :func:`_recurrent_active`.
    With the laggy join a TPPE's walker also visits at most one active
    input per cycle, so its bound is the larger of its matched pairs and its walk
    (:func:`~hwgen.compiler.scheduler.assign.walk_steps`).
    """
    config = program["config"]
    T, lanes = program["timesteps"], config["time_chunk"]
    laggy = config.get("join", "dual") == "laggy"
    bounds = []
    # The matrices the accelerator walks: a layer of convolutions is unrolled
    # (compiler/passes/unroll.py), its source is the spiking op before it.
    chain = chain or legalise_for(model, config)
    for plan, layer in zip(program["layers"], chain.layers):
        dense = layer.dense
        spikes = layer.input_spikes(trace.spikes)     # kept layers' spikes are inputs too
        chunked = spikes.reshape(len(spikes), T // lanes, lanes, -1)
        active = chunked.any(axis=2).astype(np.int64)                # (samples, chunks, K)
        passes = 1
        if dense.recurrent:
            active, passes = _recurrent_active(active, trace.spikes[plan["name"]], lanes)
        # the passes run: after an early exit no chunk runs, though the model's input
        # still spikes there
        run = np.ones(active.shape[:2], dtype=np.int64)
        if trace.steps is not None:
            chunk_run = np.arange(T // lanes)[None, :] < (trace.steps // lanes)[:, None]
            run = np.repeat(chunk_run, passes, axis=1).astype(np.int64)
        active *= run[:, :, None]
        # an unrolled layer's weight is scipy.sparse (compiler/passes/unroll.py)
        nonzero = scipy.sparse.csr_array(dense.weight != 0, dtype=np.int64)
        pairs = (nonzero @ active.reshape(-1, active.shape[-1]).T).T.reshape(
            *active.shape[:2], -1)                                   # (samples, chunks, N)
        # with a max pooling, a neuron's work is that of all the rows of its window
        group = None
        if layer.pool is not None:
            group = np.zeros((dense.outputs, len(layer.pool)), dtype=np.int64)
            for n, rows in enumerate(layer.pool):
                group[list(rows), n] = 1
            pairs = pairs @ group
        per_tppe = [pairs[..., neurons].sum(axis=-1) if neurons else
                    np.zeros(pairs.shape[:2], dtype=np.int64)
                    for neurons in plan["tppe_neurons"]]
        if laggy:
            samples, chunks, inputs = active.shape
            flat = active.reshape(samples * chunks, inputs).astype(bool)
            walks = np.concatenate([      # dense rows a block at a time: bounded memory
                walk_steps(flat, nonzero[start:start + ROW_BLOCK].toarray() != 0,
                           config["chunk"], plan["input_slots"])
                for start in range(0, nonzero.shape[0], ROW_BLOCK)], axis=1)
            # a walk costs at least a cycle per neuron (its end), but only in a pass run
            walks = walks.reshape(samples, chunks, -1) * run[:, :, None]
            if group is not None:
                walks = walks @ group
            per_tppe = [np.maximum(pairs_p, walks[..., neurons].sum(axis=-1))
                        for pairs_p, neurons in zip(per_tppe, plan["tppe_neurons"])]
        bounds.append(np.max(np.stack(per_tppe, axis=-1), axis=-1).sum(axis=1))
    return np.stack(bounds, axis=1)


def write_bound(plan, spikes, chunk, time_chunk, write_lanes=1):
    """Per sample, the fewest cycles a layer's writes take on the write bus: in each time
    chunk a word for every neuron that spiked in it and a mask with the last neuron of each
    W-neuron chunk of a TPPE's outputs, spiking or not, on the lane of its chunk's bank
    (chunk mod ``write_lanes``, one write per lane and cycle), summed over the time chunks
    of the busiest lane; a last layer's results, one per output and time chunk, go one a
    cycle. ``plan``: the layer's entry of program.json (:meth:`LayerPlan.to_json`);
    ``spikes``: its output spikes (samples, T, neurons)."""
    samples, T, neurons = spikes.shape
    chunks = T // time_chunk
    if plan["last"]:
        return np.full(samples, plan["outputs"] * chunks)
    active = spikes.reshape(samples, chunks, time_chunk, neurons).any(axis=2)
    slot_of = np.zeros(neurons, dtype=np.int64)
    for slot, neuron in enumerate(plan["output_slots"]):
        if neuron >= 0:
            slot_of[neuron] = slot
    ends = np.zeros(neurons, dtype=bool)          # carries its chunk's mask
    for tppe in plan["tppe_neurons"]:
        if tppe:
            ends[tppe[chunk - 1::chunk]] = True
            ends[tppe[-1]] = True
    writes = (active | ends).astype(np.int64)     # (samples, chunks, neurons)
    bank = (slot_of // chunk) % write_lanes
    per_lane = np.stack([writes[..., bank == b].sum(axis=-1) for b in range(write_lanes)],
                        axis=-1)
    return per_lane.max(axis=-1).sum(axis=1)
