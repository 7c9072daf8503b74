"""LIFUnit in the Amaranth simulator against the integer reference, every neuron mode."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.ir import LIF
from hwgen.compiler.program import LIFMode
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.lif import LIFUnit
from hwgen.compiler.ir import reference
import amaranth_streams
from hwgen.sim.workloads import ALL_MODES


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


def simulate(g, modes, steps, neurons, mode_index=0, ready_every=1):
    dut = LIFUnit(g, modes, steps)
    outputs = []

    async def feed(ctx):
        ctx.set(dut.mode, mode_index)
        for currents, theta, slot in neurons:
            # the header's bias is ignored: the TPPE folds it into the currents
            await amaranth_streams.put(ctx, dut.i, {
                "sums": currents, "header": {"theta": theta, "bias": 7, "slot": slot,
                                             "chunk_last": slot & 1}})

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
