"""LaggyJoin in the Amaranth simulator: both sides give exactly the matched pairs, in the
same order; the fast side one pair per cycle, the walker one spike-mask bit per cycle."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.scheduler.fibers import prefix_popcount
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.laggy_join import LaggyJoin, walk_cycles
import amaranth_streams

# Cycles after which a draining testbench gives up: a unit that stops emitting fails the
# comparison instead of hanging the test.
PATIENCE = 5000

W = 8
GEOMETRY = Geometry(timesteps=4, chunk=W, chunk_bits=3, slot_bits=6, weight_addr_bits=8,
                    weight_bits=4, acc_bits=8, v_bits=8)
masks = st.one_of(st.just(0), st.just((1 << W) - 1), st.integers(0, W - 1).map(lambda b: 1 << b),
                  st.integers(0, (1 << W) - 1))


def model(matches):
    """(weight side, spike side) a chunk-match sequence must produce, in order."""
    weights, spikes = [], []
    for m in matches:
        matched = m["smask"] & m["wmask"]
        if not matched:
            weights.append({"empty": 1, "end": m["end"]})
            spikes.append({"empty": 1, "end": m["end"]})
            continue
        bits = [b for b in range(W) if matched >> b & 1]
        for i, bit in enumerate(bits):
            end = int(m["end"] and i == len(bits) - 1)
            weights.append({"empty": 0, "end": end,
                            "waddr": m["wbase"] + prefix_popcount(m["wmask"], bit)})
            spikes.append({"empty": 0, "end": end, "chunk": m["chunk"],
                           "offset": prefix_popcount(m["smask"], bit)})
    return weights, spikes


def simulate(matches, seed, weight_ready, spike_ready, fifo_depth=2):
    dut = LaggyJoin(GEOMETRY, fifo_depth)
    rng = random.Random(seed)
    expected_weights, expected_spikes = model(matches)
    got_weights, got_spikes = [], []

    async def feed(ctx):
        for m in matches:
            await amaranth_streams.put(ctx, dut.i, m)

    def drain(stream, got, count, probability, fields):
        async def bench(ctx):
            for _ in range(PATIENCE):
                if len(got) >= count:
                    break
                ready = rng.random() < probability
                ctx.set(stream.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
                if valid and ready:
                    item = {"empty": payload.empty, "end": payload.end}
                    if not payload.empty:
                        item.update({f: getattr(payload, f) for f in fields})
                    got.append(item)
            ctx.set(stream.ready, 0)
        return bench

    async def settle(ctx):
        for _ in range(PATIENCE):
            await ctx.tick()
            if len(got_weights) == len(expected_weights) and \
                    len(got_spikes) == len(expected_spikes):
                break
        for _ in range(4):
            await ctx.tick()
        assert ctx.get(dut.idle)

    amaranth_streams.run(
        dut, feed,
        drain(dut.weights, got_weights, len(expected_weights), weight_ready, ("waddr",)),
        drain(dut.spikes, got_spikes, len(expected_spikes), spike_ready, ("chunk", "offset")),
        settle)
    return (got_weights, got_spikes), (expected_weights, expected_spikes)


match = st.fixed_dictionaries({"smask": masks, "wmask": masks, "chunk": st.integers(0, 7),
                               "wbase": st.integers(0, 200), "end": st.integers(0, 1)})


@settings(max_examples=40, deadline=None)
@given(matches=st.lists(match, min_size=1, max_size=8), seed=st.integers(0, 1000),
       weight_ready=st.sampled_from([1.0, 0.5]), spike_ready=st.sampled_from([1.0, 0.3]),
       fifo_depth=st.sampled_from([2, 3, 5]))
def test_both_sides_emit_exactly_the_matched_pairs(matches, seed, weight_ready, spike_ready,
                                                    fifo_depth):
    got, expected = simulate(matches, seed, weight_ready, spike_ready, fifo_depth)
    assert got == expected


def cycles_of(matches, fifo_depth=8):
    """Cycles between the first and the last element on each side, all readies high."""
    dut = LaggyJoin(GEOMETRY, fifo_depth)
    weight_count, spike_count = (len(side) for side in model(matches))
    seen = {"weights": [], "spikes": []}

    async def feed(ctx):
        for m in matches:
            await amaranth_streams.put(ctx, dut.i, m)

    async def watch(ctx):
        ctx.set(dut.weights.ready, 1)
        ctx.set(dut.spikes.ready, 1)
        cycle = 0
        while len(seen["weights"]) < weight_count or len(seen["spikes"]) < spike_count:
            _, _, w, s = await ctx.tick().sample(dut.weights.valid, dut.spikes.valid)
            cycle += 1
            if w:
                seen["weights"].append(cycle)
            if s:
                seen["spikes"].append(cycle)

    amaranth_streams.run(dut, feed, watch)
    return seen


def test_weight_side_one_pair_per_cycle_walker_one_spike_bit_per_cycle():
    matches = [{"smask": 0b1011, "wmask": 0b0011, "chunk": 1, "wbase": 0, "end": 0},
               {"smask": 0xFF, "wmask": 0x81, "chunk": 2, "wbase": 2, "end": 1},
               {"smask": 0x10, "wmask": 0x10, "chunk": 3, "wbase": 4, "end": 1}]
    seen = cycles_of(matches)
    weights, spikes = seen["weights"], seen["spikes"]
    # Five pairs on the fast side, back to back, as the dual join.
    assert [b - a for a, b in zip(weights, weights[1:])] == [1, 1, 1, 1]
    # The walker: 2 bits for the first match (both hits), 8 for the second (hits at its
    # first and eighth set bit), 1 for the third; each hit leaves when visited.
    assert sum(walk_cycles(m["smask"], m["wmask"]) for m in matches) == 2 + 8 + 1
    assert [b - a for a, b in zip(spikes, spikes[1:])] == [1, 1, 7, 1]


@pytest.mark.parametrize("smask, wmask, cycles", [
    (0, 0xFF, 1), (0xFF, 0, 1), (0xFF, 0x01, 1), (0xFF, 0x80, 8), (0b1010_1010, 0b1000_0000, 4),
    (0b0110, 0b0010, 1), (0b0110, 0b0100, 2)])
def test_walk_cycles(smask, wmask, cycles):
    assert walk_cycles(smask, wmask) == cycles


@pytest.mark.parametrize("geometry, depth, error, message", [
    (GEOMETRY, 1, ValueError, r"LaggyJoin: fifo_depth 1 must be an integer of at least 2"),
    (GEOMETRY, True, ValueError, r"LaggyJoin: fifo_depth True must be an integer"),
    (None, 4, TypeError, r"LaggyJoin: geometry must be a Geometry, not None"),
])
def test_bad_parameters_are_refused(refuses, geometry, depth, error, message):
    refuses(lambda: LaggyJoin(geometry, depth), error, message)
