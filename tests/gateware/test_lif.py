"""LIFUnit in the Amaranth simulator against the integer reference, every neuron mode."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.ir import LIF, Leak
from hwgen.compiler.program import LIFMode
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.lif import LIFUnit
from hwgen.compiler.ir import reference
import amaranth_streams
from hwgen.sim.workloads import ALL_MODES, NeuronMode


def geometry(T, acc_bits=10, v_bits=8):
    return Geometry(timesteps=T, chunk=8, chunk_bits=2, slot_bits=5, weight_addr_bits=4,
                    weight_bits=4, acc_bits=acc_bits, v_bits=v_bits)


def hw_mode(mode, v_bits):
    return LIFMode(mode.leak.to_json(), mode.fire, mode.reset, mode.order, v_bits)


def expected(mode, v_bits, currents, theta):
    op = LIF("n", np.array([theta]), leak=mode.leak, fire=mode.fire, reset=mode.reset,
             order=mode.order, v_bits=v_bits)
    current = np.array(currents).reshape(1, -1, 1)
    spikes, v = reference.lif(op, current)
    return sum(int(s) << t for t, s in enumerate(spikes[0, :, 0])), int(v[0, 0])


def simulate(g, modes, steps, neurons, mode_index=0, ready_every=1, multipliers=None):
    """``multipliers``: one per neuron, sent in the header's ``leak`` field."""
    dut = LIFUnit(g, modes, steps)
    outputs = []

    async def feed(ctx):
        ctx.set(dut.mode, mode_index)
        for index, (currents, theta, slot) in enumerate(neurons):
            # the header's bias is ignored: the TPPE folds it into the currents
            header = {"theta": theta, "bias": 7, "slot": slot, "chunk_last": slot & 1}
            if multipliers is not None:
                header["leak"] = multipliers[index]
            await amaranth_streams.put(ctx, dut.i, {"sums": currents, "header": header})

    async def drain(ctx):
        for _ in neurons:
            for _ in range(ready_every - 1):
                await ctx.tick()
            payload = await amaranth_streams.get(ctx, dut.o)
            outputs.append((payload.word, payload.v, payload.slot, payload.chunk_last))
        await ctx.tick()
        assert ctx.get(dut.idle)

    amaranth_streams.run(dut, feed, drain)
    return outputs


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(ALL_MODES), T=st.sampled_from([1, 2, 4, 8]),
       steps=st.sampled_from([1, 2, 4]), v_bits=st.sampled_from([5, 8]),
       seed=st.integers(0, 10_000), ready_every=st.sampled_from([1, 3]))
def test_matches_reference(mode, T, steps, v_bits, seed, ready_every):
    if T % steps:
        steps = 1
    rng = np.random.default_rng(seed)
    g = geometry(T, v_bits=8)
    vmax = (1 << (v_bits - 1)) - 1
    # currents up to the accumulator's range, thresholds over the whole range including
    # 0 and vmax (where gt can never fire)
    thetas = [0, vmax, *map(int, rng.integers(0, vmax + 1, size=4))]
    neurons = [(list(map(int, rng.integers(-500, 500, size=T))), theta, slot)
               for slot, theta in enumerate(thetas)]
    outputs = simulate(g, [hw_mode(mode, v_bits)], steps, neurons, ready_every=ready_every)
    for (currents, theta, slot), (word, v, out_slot, chunk_last) in zip(neurons, outputs):
        assert (word, v) == expected(mode, v_bits, currents, theta)
        assert (out_slot, chunk_last) == (slot, slot & 1)


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("mode", ALL_MODES, ids=str)
def test_membrane_exactly_at_the_threshold(mode, steps):
    """Small currents and thresholds, so the membrane often lands exactly on theta (and on
    2 theta after a spike): where ``gt`` and ``ge`` differ, which wide random currents
    almost never reach (a sum's -1 left out once passed every other test)."""
    rng = np.random.default_rng(steps)
    g = geometry(8, v_bits=8)
    neurons = [(list(map(int, rng.integers(-3, 6, size=8))), int(rng.integers(1, 5)), slot % 32)
               for slot in range(60)]
    outputs = simulate(g, [hw_mode(mode, 8)], steps, neurons)
    for (currents, theta, _), (word, v, _, _) in zip(neurons, outputs):
        assert (word, v) == expected(mode, 8, currents, theta)


@pytest.mark.parametrize("mode_index", [0, 1])
def test_gt_and_ge_beside_each_other_at_the_threshold(mode_index):
    """The delayed order with a subtract reset selects its first step's terms ahead, into
    registers shared by the unit's modes; with only ``gt`` modes the -1 goes into them, so
    a ``gt`` and a ``ge`` mode side by side must each keep their own test."""
    pair = [mode for mode in ALL_MODES
            if mode.order == "delayed" and mode.reset == "subtract" and mode.leak.kind == "shift"]
    pair = [next(m for m in pair if m.fire == "gt"), next(m for m in pair if m.fire == "ge")]
    rng = np.random.default_rng(mode_index)
    neurons = [(list(map(int, rng.integers(-3, 6, size=4))), int(rng.integers(1, 5)), slot)
               for slot in range(30)]
    outputs = simulate(geometry(4), [hw_mode(mode, 8) for mode in pair], 1, neurons,
                       mode_index=mode_index)
    for (currents, theta, _), (word, v, _, _) in zip(neurons, outputs):
        assert (word, v) == expected(pair[mode_index], 8, currents, theta)


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(ALL_MODES), T=st.sampled_from([1, 4]), steps=st.sampled_from([1, 2]),
       acc_bits=st.integers(2, 5), v_bits=st.integers(8, 32), seed=st.integers(0, 10_000))
def test_thresholds_far_beyond_the_accumulator_range(mode, T, steps, acc_bits, v_bits, seed):
    """The threshold is bounded by the membrane, not by the accumulator: a layer with a
    2-bit accumulator may have a threshold of 2**31 - 1. Currents span the whole
    accumulator range, extremes included (I - theta once wrapped to a positive value)."""
    if T % steps:
        steps = 1
    rng = np.random.default_rng(seed)
    g = geometry(T, acc_bits=acc_bits, v_bits=v_bits)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    vmax = (1 << (v_bits - 1)) - 1
    thetas = [vmax, vmax - 1, 1 << (acc_bits + 1), (1 << (acc_bits + 1)) + 1,
              *map(int, rng.integers(0, vmax + 1, size=2))]
    currents = [[lo] * T, [hi] * T, list(map(int, rng.integers(lo, hi + 1, size=T)))]
    neurons = [(current, theta, slot) for slot, (current, theta) in
               enumerate((c, th) for th in thetas for c in currents)]
    outputs = simulate(g, [hw_mode(mode, v_bits)], steps, neurons)
    for (current, theta, _), (word, v, _, _) in zip(neurons, outputs):
        assert (word, v) == expected(mode, v_bits, current, theta), (current, theta)


SNNTORCH_SUBTRACT = [m for m in ALL_MODES
                     if m.order == "snntorch_same_step" and m.reset == "subtract"]


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from(SNNTORCH_SUBTRACT), T=st.sampled_from([4, 8]),
       steps=st.sampled_from([1, 2, 4]), v_bits=st.sampled_from([4, 5, 8]),
       seed=st.integers(0, 10_000))
def test_snntorch_same_step_subtract_at_its_corners(mode, T, steps, v_bits, seed):
    """The mode's own corners: 2*theta around vmax (where fire(h - theta) of a saturated
    h is decided by theta alone), theta 0 and vmax, and membranes left at or above
    threshold after a spike (r = 1) by large and saturating currents."""
    rng = np.random.default_rng(seed)
    g = geometry(T, v_bits=8)
    vmax = (1 << (v_bits - 1)) - 1
    thetas = [0, 1, vmax, vmax // 2, vmax // 2 + 1, int(rng.integers(0, vmax + 1))]
    neurons = []
    for theta in thetas:
        for scale in (1, 3, 100):
            high = min(511, scale * max(theta, 1))      # within the 10-bit accumulator
            neurons.append((list(map(int, rng.integers(-high // 4, high + 1, size=T))),
                            theta, len(neurons)))
    outputs = simulate(g, [hw_mode(mode, v_bits)], steps, neurons)
    for (currents, theta, _), (word, v, _, _) in zip(neurons, outputs):
        assert (word, v) == expected(mode, v_bits, currents, theta), (currents, theta)


PER_NEURON_MODES = [(mode.fire, mode.reset, mode.order) for mode in ALL_MODES
                    if mode.leak.kind == "none"]


@settings(max_examples=40, deadline=None)
@given(attributes=st.sampled_from(PER_NEURON_MODES), frac_bits=st.integers(1, 16),
       T=st.sampled_from([1, 4, 8]), steps=st.sampled_from([1, 2, 4]),
       v_bits=st.sampled_from([4, 8, 16]), extra_bits=st.integers(0, 2),
       seed=st.integers(0, 10_000))
def test_per_neuron_leak_matches_reference(attributes, frac_bits, T, steps, v_bits,
                                           extra_bits, seed):
    """Each neuron decays by its own header multiplier a in 0..2**F, the extremes (0: no
    memory; 2**F: no leak) included; the header field may be wider than this mode's F + 1
    (another per-neuron layer with a larger F), and each neuron's product is floored
    exactly as the reference's (a[n] * v) >> F, also for negative membranes."""
    if T % steps:
        steps = 1
    fire, reset, order = attributes
    rng = np.random.default_rng(seed)
    g = replace(geometry(T, acc_bits=12, v_bits=16),
                leak_bits=min(17, frac_bits + 1 + extra_bits))
    vmax = (1 << (v_bits - 1)) - 1
    top = 1 << frac_bits
    thetas = [0, vmax, *map(int, rng.integers(0, vmax + 1, size=6))]
    multipliers = [top, 0, 1, top - 1, *map(int, rng.integers(0, top + 1, size=4))]
    neurons = [(list(map(int, rng.integers(-2000, 2000, size=T))), theta, slot)
               for slot, theta in enumerate(thetas)]
    leak = Leak.per_neuron([], frac_bits)
    mode = LIFMode({"kind": "per_neuron", "frac_bits": frac_bits}, fire, reset, order, v_bits)
    outputs = simulate(g, [mode], steps, neurons, multipliers=multipliers)
    for (currents, theta, slot), a, (word, v, _, _) in zip(neurons, multipliers, outputs):
        neuron = NeuronMode(Leak.per_neuron([a], leak.frac_bits), fire, reset, order)
        assert (word, v) == expected(neuron, v_bits, currents, theta), (currents, theta, a)


def test_per_neuron_leak_beside_other_modes():
    """A per-neuron mode next to a constant multiply: the layer's mode picks the form,
    and a neuron's multiplier matters only in the per-neuron mode."""
    g = replace(geometry(4), leak_bits=4)
    per_neuron = LIFMode({"kind": "per_neuron", "frac_bits": 3}, "gt", "subtract",
                         "delayed", 8)
    constant = hw_mode(NeuronMode(Leak.by_multiply(7, 3), "gt", "subtract", "delayed"), 8)
    neurons = [([60, -3, 0, 0], 100, 0), ([60, -3, 0, 0], 100, 1), ([-70, 0, 5, 0], 9, 2)]
    multipliers = [8, 1, 3]
    words = {}
    for index, mode in enumerate([per_neuron, constant]):
        outputs = simulate(g, [per_neuron, constant], 1, neurons, mode_index=index,
                           multipliers=multipliers)
        for (currents, theta, _), a, (word, v, _, _) in zip(neurons, multipliers, outputs):
            leak = Leak.per_neuron([a], 3) if index == 0 else Leak.by_multiply(7, 3)
            neuron = NeuronMode(leak, "gt", "subtract", "delayed")
            assert (word, v) == expected(neuron, 8, currents, theta)
            words[index, a] = v
    # 60, -3: a = 8 keeps 57; a = 1 leaves 60 // 8 - 3 = 4, then 0; 7/8 gives 49, 42, 36
    assert (words[0, 8], words[0, 1], words[1, 8], words[1, 1]) == (57, 0, 36, 36)


def test_mode_select_picks_the_layer_mode():
    g = geometry(4)
    modes = [hw_mode(ALL_MODES[0], 8), hw_mode(ALL_MODES[-1], 6)]
    neurons = [([41, -2, 18, 10], 10, 0), ([3, 3, 3, 3], 5, 1)]
    for index, (mode, v_bits) in enumerate([(ALL_MODES[0], 8), (ALL_MODES[-1], 6)]):
        outputs = simulate(g, modes, 1, neurons, mode_index=index)
        for (currents, theta, _), (word, v, _, _) in zip(neurons, outputs):
            assert (word, v) == expected(mode, v_bits, currents, theta)


def test_throughput_is_one_neuron_per_t_over_steps_cycles():
    g = geometry(8)
    dut = LIFUnit(g, [hw_mode(ALL_MODES[0], 8)], 2)
    times = []

    async def feed(ctx):
        for slot in range(6):
            await amaranth_streams.put(ctx, dut.i, {"sums": [1] * 8, "header": {
                "theta": 3, "bias": 0, "slot": slot, "chunk_last": 0}})

    async def drain(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = 0
        while len(times) < 6:
            await ctx.tick()
            cycle += 1
            if ctx.get(dut.o.valid):
                times.append(cycle)

    amaranth_streams.run(dut, feed, drain)
    assert np.diff(times).tolist() == [4] * 5


@pytest.mark.parametrize("args, message", [
    (dict(modes=[]), "LIFUnit needs at least one neuron mode"),
    (dict(steps_per_cycle=3), "steps_per_cycle 3 must divide T_c = 4"),
    (dict(modes=[LIFMode({"kind": "shift", "shift": 0}, "ge", "zero", "same_step", 8)]),
     "LIFUnit mode 0: leak shift 0 must be between 1"),
    (dict(modes=[LIFMode({"kind": "none"}, "ge", "zero", "same_step", 9)]),
     "LIFUnit mode 0: v_bits 9 exceeds the unit's 8"),
    (dict(modes=[LIFMode({"kind": "none"}, "geq", "zero", "same_step", 8)]),
     "LIFUnit mode 0: unknown fire/reset/order"),
    (dict(modes=[LIFMode({"kind": "per_neuron", "frac_bits": 3}, "ge", "zero", "same_step",
                         8)]),
     "LIFUnit mode 0: a per-neuron leak with frac_bits 3 needs 4-bit multipliers; the "
     "geometry's leak_bits is 0"),
    (dict(modes=[LIFMode({"kind": "per_neuron", "frac_bits": 17}, "ge", "zero", "same_step",
                         8)]),
     "LIFUnit mode 0: leak frac_bits 17 must be between 1 and 16"),
])
def test_parameters_are_validated(args, message, refuses):
    from hwgen.errors import ModelError
    options = {"modes": [hw_mode(ALL_MODES[0], 8)], "steps_per_cycle": 1, **args}
    refuses(lambda: LIFUnit(geometry(4), options["modes"], options["steps_per_cycle"]),
            (ValueError, ModelError), message)


def test_chained_steps_grow_the_design_linearly():
    """Each chained step is a fixed-size circuit (once, an expression reused by the next
    step was emitted again for every use, and T = 10 gave 80 MB of Verilog)."""
    from amaranth.back import rtlil
    g = geometry(8)
    mode = hw_mode(ALL_MODES[20], 8)
    sizes = [len(rtlil.convert(LIFUnit(g, [mode], steps))) for steps in (1, 2, 4, 8)]
    growth = [b - a for a, b in zip(sizes, sizes[1:])]
    per_step = growth[0]
    assert growth[1] <= 2.5 * per_step and growth[2] <= 5 * per_step
