"""LIFUnit with current-based modes (docs/semantics.md section 4b) in the Amaranth simulator
against the integer reference: every leak pair, comparison, reset and order, several steps
per cycle, saturation of both states, and the state carried across time chunks (the
unit's ``v``/``state``/``i`` out of one chunk fed back into the next, as the TPPE's
membrane memory does)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.ir import LIF, Leak, reference
from hwgen.compiler.program import LIFMode
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.lif import LIFUnit
from hwgen.sim.workloads import ALL_MODES, NeuronMode
import amaranth_streams

SYNAPSES = [Leak.none(), Leak.by_shift(1), Leak.by_shift(3), Leak.by_multiply(3, 2),
            Leak.by_multiply(0, 4), Leak.by_multiply(13, 4)]


def geometry(T, lanes, i_bits, acc_bits=10, v_bits=8):
    return Geometry(timesteps=T, chunk=8, chunk_bits=2, slot_bits=5, weight_addr_bits=4,
                    weight_bits=4, acc_bits=acc_bits, v_bits=v_bits, lanes=lanes,
                    i_bits=i_bits)


def hw_mode(mode, v_bits, synapse=None, i_bits=None, rounding="separate"):
    if synapse is None:
        return LIFMode(mode.leak.to_json(), mode.fire, mode.reset, mode.order, v_bits)
    return LIFMode(mode.leak.to_json(), mode.fire, mode.reset, mode.order, v_bits,
                   synapse.to_json(), i_bits, rounding)


def expected(mode, v_bits, synapse, i_bits, currents, theta, rounding="separate"):
    op = LIF("n", np.array([theta]), leak=mode.leak, fire=mode.fire, reset=mode.reset,
             order=mode.order, v_bits=v_bits, synapse=synapse, i_bits=i_bits,
             synapse_rounding=rounding if synapse is not None else None)
    spikes, v = reference.lif(op, np.array(currents).reshape(1, -1, 1))
    return sum(int(s) << t for t, s in enumerate(spikes[0, :, 0])), int(v[0, 0])


def simulate(g, modes, steps, neurons, mode_index=0):
    """Run every neuron through all T / T_c chunks, feeding each chunk the state the
    previous one left; (packed word over T, final v) per neuron."""
    dut = LIFUnit(g, modes, steps)
    T_c, chunks = g.lanes, g.time_chunks
    results = []

    async def run(ctx):
        ctx.set(dut.mode, mode_index)
        for currents, theta in neurons:
            state = {"v": 0, "state": 0, "i": 0}
            word = 0
            for c in range(chunks):
                await amaranth_streams.put(ctx, dut.i, {
                    "sums": currents[c * T_c:(c + 1) * T_c],
                    "header": {"theta": theta, "bias": 0, "slot": 0, "chunk_last": 0},
                    **({"i": state["i"]} if g.i_bits else {}),
                    "v": state["v"], "state": state["state"]})
                payload = await amaranth_streams.get(ctx, dut.o)
                word |= payload.word << (c * T_c)
                state = {"v": payload.v, "state": payload.state,
                         "i": payload.i if g.i_bits else 0}
            results.append((word, state["v"]))

    amaranth_streams.run(dut, run)
    return results


@settings(max_examples=30, deadline=None)
@given(mode=st.sampled_from(ALL_MODES), synapse=st.sampled_from(SYNAPSES),
       T=st.sampled_from([1, 4, 8]), chunks=st.sampled_from([1, 2, 4]),
       steps=st.sampled_from([1, 2]), v_bits=st.sampled_from([5, 8]),
       i_bits=st.sampled_from([4, 6, 9]), rounding=st.sampled_from(["separate", "joint"]),
       seed=st.integers(0, 10_000))
def test_current_based_modes_match_the_reference(mode, synapse, T, chunks, steps, v_bits,
                                                  i_bits, rounding, seed):
    if T % chunks:
        chunks = 1
    lanes = T // chunks
    if lanes % steps:
        steps = 1
    if synapse.kind == "shift" and synapse.shift > i_bits:
        synapse = Leak.by_shift(i_bits)
    rng = np.random.default_rng(seed)
    g = geometry(T, lanes, i_bits=9, v_bits=8)
    vmax = (1 << (v_bits - 1)) - 1
    # currents beyond the synaptic current's range (i saturates) and small ones
    thetas = [0, vmax, *map(int, rng.integers(0, vmax + 1, size=3))]
    neurons = [(list(map(int, rng.integers(-scale, scale + 1, size=T))), theta)
               for theta in thetas for scale in (6, 500)]
    outputs = simulate(g, [hw_mode(mode, v_bits, synapse, i_bits, rounding)], steps, neurons)
    for (currents, theta), result in zip(neurons, outputs):
        assert result == expected(mode, v_bits, synapse, i_bits, currents, theta, rounding), \
            (currents, theta)


@pytest.mark.parametrize("rounding", ["separate", "joint"])
@pytest.mark.parametrize("index", range(len(ALL_MODES)),
                         ids=[m.label() for m in ALL_MODES])
def test_every_mode_with_a_synapse(index, rounding):
    """Each of the 54 modes, deterministically (random draws above may miss a mode's own
    corner, e.g. the delayed zero reset that zeroes a whole step): two time chunks of 4,
    one or two steps per cycle, currents that saturate i and ones that do not."""
    mode = ALL_MODES[index]
    synapse = SYNAPSES[index % len(SYNAPSES)]
    rng = np.random.default_rng(index)
    g = geometry(8, 4, i_bits=7, v_bits=8)
    neurons = [([10] * 8, 4), ([10] * 8, 0), ([70, 0, 0, -5, 0, 0, 0, 0], 30)]
    neurons += [(list(map(int, rng.integers(-scale, scale + 1, size=8))), int(theta))
                for theta in rng.integers(0, 128, size=3) for scale in (8, 300)]
    outputs = simulate(g, [hw_mode(mode, 8, synapse, 7, rounding)], 1 + index % 2, neurons)
    for (currents, theta), result in zip(neurons, outputs):
        assert result == expected(mode, 8, synapse, 7, currents, theta, rounding), \
            (currents, theta)


def test_voltage_and_current_based_modes_share_the_unit():
    """A voltage-based layer and current-based ones of both roundings in the same unit,
    each selected by the mode input."""
    g = geometry(8, 4, i_bits=8)
    plain, cuba = ALL_MODES[0], ALL_MODES[1]
    layers = [(plain, None, None, "separate"), (cuba, Leak.by_multiply(3, 2), 8, "separate"),
              (cuba, Leak.by_multiply(3, 2), 6, "joint")]
    modes = [hw_mode(mode, 8, *rest) for mode, *rest in layers]
    neurons = [([41, -2, 18, 10, 0, 0, 3, -7], 10), ([3, 3, 3, 3, 9, 9, -9, 1], 5)]
    for index, (mode, synapse, i_bits, rounding) in enumerate(layers):
        for (currents, theta), result in zip(neurons, simulate(g, modes, 1, neurons, index)):
            assert result == expected(mode, 8, synapse, i_bits, currents, theta, rounding)


def test_the_synaptic_current_changes_the_spikes():
    """Guard against a synapse that does nothing: a decaying current keeps a single input
    pulse firing for several steps, which a voltage-based neuron cannot."""
    g = geometry(8, 8, i_bits=8)
    mode = ALL_MODES[0]              # IF, ge, subtract, same step
    neurons = [([10, 0, 0, 0, 0, 0, 0, 0], 4)]
    (cuba,) = simulate(g, [hw_mode(mode, 8, Leak.by_multiply(1, 1), 8)], 1, neurons)
    assert cuba == expected(mode, 8, Leak.by_multiply(1, 1), 8, *neurons[0])
    # i = 10, 5, 2, 1, 0...: v = 10 -> 6 (spike), 11 -> 7 (spike), 9 -> 5, 6 -> 2 ...
    assert cuba[0] != expected(mode, 8, None, None, *neurons[0])[0]


@pytest.mark.parametrize("i_bits, message", [
    (0, "exceeds the unit's 0"), (9, "exceeds the unit's 8")])
def test_current_based_mode_needs_the_geometry_width(i_bits, message, refuses):
    g = geometry(4, 4, i_bits=0 if i_bits == 0 else 8)
    refuses(lambda: LIFUnit(g, [hw_mode(ALL_MODES[0], 8, Leak.none(),
                                        4 if i_bits == 0 else i_bits)]), ValueError, message)


def test_the_joint_rounding_is_its_own_circuit():
    """beta = alpha = 1/2: separate rounding floors v/2 and i/2 each (1/2 + 1/2 -> 0), the
    joint one floors their sum (-> 1), so the two spike differently on this input."""
    mode = NeuronMode(Leak.by_multiply(1, 1), "ge", "subtract", "same_step")
    g = geometry(8, 4, i_bits=6)
    neurons = [([1, 1, 0, 1, 1, 0, 1, 0], 2)]
    results = {}
    for rounding in ("separate", "joint"):
        (results[rounding],) = simulate(
            g, [hw_mode(mode, 8, Leak.by_multiply(1, 1), 6, rounding)], 1, neurons)
        assert results[rounding] == expected(mode, 8, Leak.by_multiply(1, 1), 6, *neurons[0],
                                             rounding)
    assert results["separate"] != results["joint"]


def test_only_current_based_modes_generate_synaptic_logic():
    """A unit without current-based modes has no synaptic-current state or logic (its
    Verilog does not depend on this feature); one with them has both."""
    from amaranth.back import verilog
    plain = verilog.convert(LIFUnit(geometry(4, 4, i_bits=0), [hw_mode(ALL_MODES[0], 8)]))
    assert "syn" not in plain and "_i " not in plain and "_y" not in plain
    cuba = verilog.convert(LIFUnit(geometry(4, 4, i_bits=6),
                                   [hw_mode(ALL_MODES[0], 8, Leak.by_shift(1), 6)]))
    assert "syn" in cuba and "mode0_step0_i" in cuba
