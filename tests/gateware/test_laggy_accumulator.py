"""LaggyAccumulator in the Amaranth simulator: pseudo-sum minus corrections equals the
gated sum bias + sum of w * word[t], bit for bit, however far the words lag the weights."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.gateware.geometry import Geometry
from hwgen.gateware.laggy_accumulator import LaggyAccumulator
import amaranth_streams

# Cycles after which a draining testbench gives up: a unit that stops emitting fails the
# comparison instead of hanging the test.
PATIENCE = 5000

T = 4
WEIGHT_BITS = 4
ACC_BITS = 9
GEOMETRY = Geometry(timesteps=T, chunk=8, chunk_bits=3, slot_bits=6, weight_addr_bits=8,
                    weight_bits=WEIGHT_BITS, acc_bits=ACC_BITS, v_bits=12)
WMIN, WMAX = -(1 << WEIGHT_BITS - 1), (1 << WEIGHT_BITS - 1) - 1

weights = st.one_of(st.sampled_from([WMIN, WMAX, -1, 1]), st.integers(WMIN, WMAX))
words = st.one_of(st.sampled_from([0, (1 << T) - 1, 1, 1 << T - 1]), st.integers(0, (1 << T) - 1))
pair = st.tuples(weights, words)
# A neuron: a bias and its pairs (none: one empty element). Bias and pair count are kept
# inside the accumulator's range, as the compiler's width check guarantees.
neuron = st.tuples(st.integers(-100, 100), st.lists(pair, max_size=12))


def model(neurons):
    """Per neuron: (its T input currents, its slot)."""
    return [([bias + sum(w for w, word in pairs if word >> t & 1) for t in range(T)], slot)
            for slot, (bias, pairs) in enumerate(neurons)]


def elements(neurons):
    """The fast and the slow side's elements, one per pair (an empty neuron: one empty)."""
    fast, slow = [], []
    for bias, pairs in neurons:
        if not pairs:
            # The weight and the word of an empty element are whatever the memories held.
            fast.append({"weight": WMIN, "end": 1, "empty": 1})
            slow.append({"word": 0, "end": 1, "empty": 1})
        for i, (w, word) in enumerate(pairs):
            end = int(i == len(pairs) - 1)
            fast.append({"weight": w, "end": end, "empty": 0})
            slow.append({"word": word, "end": end, "empty": 0})
    return fast, slow


def simulate(neurons, seed, fast_p, slow_p, out_p, fifo_depth):
    dut = LaggyAccumulator(GEOMETRY, fifo_depth)
    rng = random.Random(seed)
    fast, slow = elements(neurons)
    got = []

    def feeder(stream, items, probability):
        async def bench(ctx):
            for item in items:
                while rng.random() >= probability:
                    await ctx.tick()
                await amaranth_streams.put(ctx, stream, item)
        return bench

    async def headers(ctx):
        for slot, (bias, _) in enumerate(neurons):
            await amaranth_streams.put(ctx, dut.headers, {"theta": 5, "bias": bias,
                                                          "slot": slot, "chunk_last": slot & 1})

    async def drain(ctx):
        for _ in range(PATIENCE):
            if len(got) >= len(neurons):
                break
            ready = rng.random() < out_p
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(([payload.sums[t] for t in range(T)], payload.header.slot))
                assert payload.header.theta == 5
                assert payload.header.chunk_last == payload.header.slot & 1
        ctx.set(dut.o.ready, 0)
        for _ in range(4):
            await ctx.tick()
        assert ctx.get(dut.idle)

    amaranth_streams.run(dut, feeder(dut.weights, fast, fast_p), feeder(dut.words, slow, slow_p),
                         headers, drain)
    return got


@settings(max_examples=40, deadline=None)
@given(neurons=st.lists(neuron, min_size=1, max_size=6), seed=st.integers(0, 1000),
       fast_p=st.sampled_from([1.0, 0.5]), slow_p=st.sampled_from([1.0, 0.3]),
       out_p=st.sampled_from([1.0, 0.4]), fifo_depth=st.sampled_from([2, 3, 8]))
def test_currents_equal_the_gated_sums(neurons, seed, fast_p, slow_p, out_p, fifo_depth):
    assert simulate(neurons, seed, fast_p, slow_p, out_p, fifo_depth) == model(neurons)


def test_extremes_wrap_back_to_the_exact_sum():
    # 70 weights of -8 with all-zero words: the pseudo-sum, -660, and the correction, 560,
    # wrap around the 10-bit accumulators; their difference, the current -100, does not.
    # (The compiler sizes acc_bits so that the pseudo-sum fits; the wrap is still exact.)
    neurons = [(-100, [(WMIN, 0)] * 70), (100, [(WMAX, (1 << T) - 1)] * 20), (0, [])]
    assert simulate(neurons, 1, 1.0, 1.0, 1.0, 2) == model(neurons)


def test_the_fast_side_runs_ahead_by_the_fifo_depth_and_the_round_trip():
    # With the slow side stopped, the fast side takes fifo_depth + 2 weights, then waits.
    for depth in (2, 5):
        dut = LaggyAccumulator(GEOMETRY, depth)
        taken = []

        async def bench(ctx):
            ctx.set(dut.headers.valid, 1)
            ctx.set(dut.headers.payload, {"theta": 1, "bias": 0, "slot": 0, "chunk_last": 0})
            ctx.set(dut.weights.valid, 1)
            ctx.set(dut.weights.payload, {"weight": 1, "end": 0, "empty": 0})
            for _ in range(20):
                _, _, ready = await ctx.tick().sample(dut.weights.ready)
                taken.append(ready)

        amaranth_streams.run(dut, bench)
        assert sum(taken) == depth + 2


@pytest.mark.parametrize("geometry, depth, error, message", [
    (GEOMETRY, 1, ValueError, r"LaggyAccumulator: fifo_depth 1 must be an integer of at least 2"),
    (GEOMETRY, "4", ValueError, r"LaggyAccumulator: fifo_depth '4' must be an integer"),
    ("g", 4, TypeError, r"LaggyAccumulator: geometry must be a Geometry, not 'g'"),
])
def test_bad_parameters_are_refused(refuses, geometry, depth, error, message):
    refuses(lambda: LaggyAccumulator(geometry, depth), error, message)
