"""The integer reference against hand-computed cases and an independent scalar model.

The scalar model below is a second, deliberately naive transcription of
docs/semantics.md (one neuron, one step at a time, plain Python integers). The vectorised
reference must agree with it on random models in every neuron mode.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.errors import InputError
from compiler.ir import LIF, Dense, Input, Leak, Model, Readout
from sim import reference
from sim.workloads import ALL_MODES, NeuronMode, random_model, random_spikes


def single_neuron(currents, *, theta, mode=NeuronMode(), v_bits=8):
    """Run one LIF neuron on a given current sequence through the reference."""
    op = LIF("n", np.array([theta]), leak=mode.leak, fire=mode.fire, reset=mode.reset,
             order=mode.order, v_bits=v_bits)
    spikes, v = reference.lif(op, np.array(currents, dtype=np.int64).reshape(1, -1, 1))
    return spikes[0, :, 0].tolist(), int(v[0, 0])


# --- the scalar transcription of docs/semantics.md -------------------------------------

def scalar_leak(leak, v):
    if leak.kind == "shift":
        return v - (v >> leak.shift)
    if leak.kind == "multiply":
        return (leak.multiplier * v) >> leak.frac_bits
    return v


def scalar_sat(x, bits):
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))


def scalar_run(model, spikes):
    """spikes: (T, inputs) list of lists -> {lif name: (T, neurons) spikes}, final v."""
    T = model.timesteps
    values, finals = {}, {}
    for op in model.ops:
        if isinstance(op, Input):
            values[op.name] = [list(map(int, row)) for row in spikes]
        elif isinstance(op, Dense):
            source = values[model.inputs_of(op.name)[0]]
            values[op.name] = [[sum(int(op.weight[n, k]) * source[t][k]
                                    for k in range(op.inputs))
                                + (int(op.bias[n]) if op.bias is not None else 0)
                                for n in range(op.outputs)] for t in range(T)]
        elif isinstance(op, LIF):
            current = values[model.inputs_of(op.name)[0]]
            out = [[0] * op.size for _ in range(T)]
            finals[op.name] = []
            for n in range(op.size):
                theta, v, p = int(op.threshold[n]), 0, 0
                for t in range(T):
                    leaked = scalar_leak(op.leak, v)

                    def fire(value):
                        return int(value >= theta if op.fire == "ge" else value > theta)
                    if op.order in ("same_step", "snntorch_same_step"):
                        h = scalar_sat(leaked + current[t][n], op.v_bits)
                        r = fire(v) if op.order == "snntorch_same_step" \
                            and op.reset == "subtract" else 0
                        s = fire(h - r * theta)
                        v = {"subtract": h - s * theta, "zero": 0 if s else h,
                             "none": h}[op.reset]
                    else:
                        base = {"subtract": leaked - p * theta,
                                "zero": 0 if p else leaked, "none": leaked}[op.reset]
                        h = scalar_sat(base + current[t][n], op.v_bits)
                        s = int(h >= theta if op.fire == "ge" else h > theta)
                        v = h
                    p = s
                    out[t][n] = s
                finals[op.name].append(v)
            values[op.name] = out
    return values, finals


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), mode=st.sampled_from(ALL_MODES),
       timesteps=st.integers(1, 12), v_bits=st.sampled_from([4, 6, 10]),
       spike_density=st.sampled_from([0.0, 0.2, 0.7, 1.0]),
       threshold_scale=st.sampled_from([0.3, 1.0, 3.0]))
def test_vectorised_reference_matches_the_scalar_transcription(
        seed, mode, timesteps, v_bits, spike_density, threshold_scale):
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 12, size=3)]
    model = random_model(seed, sizes, timesteps, modes=(mode,), v_bits=v_bits,
                         threshold_scale=threshold_scale, weight_density=0.7)
    spikes = random_spikes(seed, 3, timesteps, sizes[0], spike_density=spike_density)
    trace = reference.run(model, spikes)
    for sample in range(3):
        expected, finals = scalar_run(model, spikes[sample])
        for name in ("lif1", "lif2"):
            assert trace.spikes[name][sample].tolist() == expected[name], name
            assert trace.membranes[name][sample].tolist() == finals[name], name


# --- hand-computed cases ----------------------------------------------------------------

def test_if_neuron_same_step_subtract():
    # theta 5, inputs 3 3 3 3: h = 3, 6 (spike, v=1), 4, 7 (spike, v=2)
    assert single_neuron([3, 3, 3, 3], theta=5) == ([0, 1, 0, 1], 2)


def test_snntorch_same_step_subtract_decides_after_a_second_subtraction():
    """snnTorch's Leaky(reset_delay=False): theta 2, IF, input 5 then nothing. Step 0
    spikes and stores 3; from then on the stored 3 is above threshold, so each decision
    subtracts theta once more (3 - 2 = 1: no spike) and the membrane stays at 3. NIR's
    same-step order spikes again at step 1 (3 > 2) and keeps 1."""
    mode = NeuronMode(fire="gt", order="snntorch_same_step")
    assert single_neuron([5, 0, 0, 0], theta=2, mode=mode) == ([1, 0, 0, 0], 3)
    assert single_neuron([5, 0, 0, 0], theta=2, mode=NeuronMode(fire="gt")) == ([1, 1, 0, 0], 1)
    # a stored membrane at threshold needs h - theta above it to spike again: 5 -> 3,
    # then 3 + 2 = 5, 5 - 2 = 3 > 2 spikes and stores 3
    assert single_neuron([5, 2, 1], theta=2, mode=mode) == ([1, 1, 0], 4)
    # ge with theta 0: r*theta is 0, so it is exactly same_step
    ge = NeuronMode(fire="ge", order="snntorch_same_step")
    assert single_neuron([1, -1, 0, 2], theta=0, mode=ge) == \
        single_neuron([1, -1, 0, 2], theta=0, mode=NeuronMode(fire="ge"))
    # zero and none: the same as same_step
    for reset in ("zero", "none"):
        assert single_neuron([5, 0, 3], theta=2, mode=NeuronMode(fire="gt", reset=reset,
                                                                  order="snntorch_same_step")) \
            == single_neuron([5, 0, 3], theta=2, mode=NeuronMode(fire="gt", reset=reset))


def test_fire_ge_versus_gt_at_equality():
    assert single_neuron([5], theta=5, mode=NeuronMode(fire="ge"))[0] == [1]
    assert single_neuron([5], theta=5, mode=NeuronMode(fire="gt"))[0] == [0]


def test_reset_zero_and_none():
    assert single_neuron([6, 1], theta=5, mode=NeuronMode(reset="zero")) == ([1, 0], 1)
    assert single_neuron([6, 1], theta=5, mode=NeuronMode(reset="none")) == ([1, 1], 7)


def test_delayed_order_resets_one_step_late():
    # snnTorch-style: h0 = 6 spikes; h1 = 6 + 1 - 5 = 2; h2 = 2 + 4 = 6 spikes
    assert single_neuron([6, 1, 4], theta=5, mode=NeuronMode(order="delayed")) == ([1, 0, 1], 6)
    # zero reset, delayed: step 1 starts from 0 because step 0 spiked: h = 6, 1, 5
    mode = NeuronMode(order="delayed", reset="zero")
    assert single_neuron([6, 1, 4], theta=5, mode=mode) == ([1, 0, 1], 5)
    assert single_neuron([6, 1, 3], theta=5, mode=mode) == ([1, 0, 0], 4)


def test_leak_shift_and_multiply():
    # shift 1: v - (v >> 1) = ceil(v/2): 4 -> 2+3=5 -> 3+0=3
    assert single_neuron([4, 3, 0], theta=100, mode=NeuronMode(Leak.by_shift(1))) == ([0, 0, 0], 3)
    # multiply 1/2: floor(v/2): 4 -> 2+3=5 -> 2+0=2
    mode = NeuronMode(Leak.by_multiply(1, 1))
    assert single_neuron([4, 3, 0], theta=100, mode=mode) == ([0, 0, 0], 2)


def test_saturation_clamps_h_once_per_step():
    # 4-bit membrane: [-8, 7]. 6+6 saturates at 7 (no spike at theta 7 with gt), then -20
    # saturates at -8.
    mode = NeuronMode(fire="gt")
    assert single_neuron([6, 6, -20], theta=7, mode=mode, v_bits=4) == ([0, 0, 0], -8)


def test_encoder():
    spikes = reference.if_encode(np.array([[16, 8, 0, 4]]), 16, 4)[0]
    assert spikes[:, 0].tolist() == [1, 1, 1, 1]
    assert spikes[:, 1].tolist() == [0, 1, 0, 1]
    assert spikes[:, 2].tolist() == [0, 0, 0, 0]
    assert spikes[:, 3].tolist() == [0, 0, 0, 1]


def test_dense_is_exact_for_large_sums():
    rng = np.random.default_rng(0)
    weight = rng.integers(-32768, 32768, size=(5, 900))
    op = Dense("fc", weight, np.full(5, 30000), weight_bits=16, acc_bits=48)
    spikes = (rng.random((2, 3, 900)) < 0.9).astype(np.uint8)
    expected = np.einsum("stk,nk->stn", spikes.astype(np.int64), weight) + 30000
    assert np.array_equal(reference.dense(op, spikes), expected)


def test_readout_counts_and_breaks_ties_low():
    model = Model("m", 2)
    model.add(Input("x", (2,)))
    model.add(Dense("fc", np.eye(2, dtype=int), weight_bits=2, acc_bits=3), "x")
    model.add(LIF("lif", np.array([1, 1]), v_bits=4), "fc")
    model.add(Readout("r"), "lif")
    spikes = np.array([[[1, 1], [0, 1]], [[1, 1], [1, 1]]], dtype=np.uint8)
    trace = reference.run(model, spikes)
    assert trace.counts.tolist() == [[1, 2], [2, 2]]
    assert trace.predictions.tolist() == [1, 0]


@pytest.mark.parametrize("inputs, message", [
    (np.zeros((2, 3), dtype=np.float32), "inputs must be integers, got dtype float32"),
    (np.zeros((2, 5), dtype=int), r"inputs have shape \(2, 5\); model 'm' expects \(samples, 3\)"),
    (np.full((2, 3), 17), "input values must be between 0 and the encoder threshold 16"),
    (np.full((2, 3), -1), "input values must be between 0 and the encoder threshold 16"),
    (np.zeros((2, 2, 3), dtype=int), r"spike trains have shape \(2, 2, 3\); model 'm' "
                                     r"expects \(samples, 4, 3\)"),
    (np.full((1, 4, 3), 2), "spike trains must hold only 0 and 1"),
    (np.zeros(3, dtype=int), r"inputs must be 2-D \(samples, 3\) or 3-D \(samples, T, 3\)"),
])
def test_bad_inputs_are_refused(inputs, message):
    model = Model("m", 4)
    model.add(Input("x", (3,), encoding="if", threshold=16))
    with pytest.raises(InputError, match=message):
        reference.encode(model, inputs)


def test_integers_need_an_integer_encoding():
    model = Model("m", 4)
    model.add(Input("x", (3,)))
    with pytest.raises(InputError, match=r"model 'm' takes spike trains \(samples, 4, 3\); "
                                         r"got integers"):
        reference.encode(model, np.zeros((1, 3), dtype=int))


def test_spike_trains_bypass_the_encoder():
    model = Model("m", 2)
    model.add(Input("x", (1,), encoding="if", threshold=4))
    spikes = np.array([[[1], [0]]], dtype=np.uint8)
    assert np.array_equal(reference.encode(model, spikes), spikes)
