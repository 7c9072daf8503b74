"""InnerJoin in the Amaranth simulator: exactly the matched pairs, one per cycle."""

import random
from dataclasses import replace

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.scheduler.fibers import prefix_popcount
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.inner_join import InnerJoin
import amaranth_streams

W = 8
GEOMETRY = Geometry(timesteps=4, chunk=W, chunk_bits=3, slot_bits=6, weight_addr_bits=8,
                    weight_bits=4, acc_bits=8, v_bits=8)
masks = st.one_of(st.just(0), st.just((1 << W) - 1), st.integers(0, W - 1).map(lambda b: 1 << b),
                  st.integers(0, (1 << W) - 1))


def model(matches):
    """The pairs a chunk-match sequence must produce, in order."""
    pairs = []
    for m in matches:
        matched = m["smask"] & m["wmask"]
        if not matched:
            pairs.append({"empty": 1, "end": m["end"]})
            continue
        bits = [b for b in range(W) if matched >> b & 1]
        for i, bit in enumerate(bits):
            pairs.append({"empty": 0, "end": int(m["end"] and i == len(bits) - 1),
                          "chunk": m["chunk"], "offset": prefix_popcount(m["smask"], bit),
                          "waddr": m["wbase"] + prefix_popcount(m["wmask"], bit)})
    return pairs


def simulate(matches, seed, ready_probability, gaps=False, geometry=GEOMETRY):
    """``gaps``: the feed pauses 0-2 cycles before each match, so matches arrive while the
    join's two stages are full, half full or empty."""
    dut = InnerJoin(geometry)
    rng = random.Random(seed)
    gap_rng = random.Random(seed + 1)
    got = []
    expected_count = len(model(matches))

    async def feed(ctx):
        for m in matches:
            for _ in range(gap_rng.randrange(3) if gaps else 0):
                await ctx.tick()
            await amaranth_streams.put(ctx, dut.i, m)

    async def drain(ctx):
        # bounded, so that a lost pair fails the test instead of hanging it
        for _ in range(50 + 20 * (expected_count + len(matches))):
            if len(got) == expected_count:
                break
            ready = rng.random() < ready_probability
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                pair = {"empty": payload.empty, "end": payload.end}
                if not payload.empty:
                    pair.update(chunk=payload.chunk, offset=payload.offset, waddr=payload.waddr)
                    if geometry.shared_banks:
                        pair["words"] = [payload.words[j] for j in range(W)]
                got.append(pair)
        assert len(got) == expected_count, f"{len(got)} of {expected_count} pairs came out"
        for _ in range(4):
            await ctx.tick()
        assert ctx.get(dut.idle)

    amaranth_streams.run(dut, feed, drain)
    return got


match = st.fixed_dictionaries({"smask": masks, "wmask": masks, "chunk": st.integers(0, 7),
                               "wbase": st.integers(0, 200), "end": st.integers(0, 1)})


@settings(max_examples=60, deadline=None)
@given(matches=st.lists(match, min_size=1, max_size=12), seed=st.integers(0, 1000),
       ready=st.sampled_from([1.0, 0.5, 0.3]), gaps=st.booleans())
def test_emits_exactly_the_matched_pairs(matches, seed, ready, gaps):
    assert simulate(matches, seed, ready, gaps) == model(matches)


@pytest.mark.parametrize("seed", range(40))
def test_random_matches_with_stalls_and_gaps(seed):
    """Wider than the hypothesis test's masks: every mask from a uniform draw, the consumer
    stalling half the time and the feed pausing, so the two stages fill and drain in every
    order (a pair overwritten while the output stalls once passed the test above)."""
    rng = random.Random(seed)
    matches = [{"smask": rng.randrange(1 << W), "wmask": rng.randrange(1 << W),
                "chunk": rng.randrange(8), "wbase": rng.randrange(200), "end": rng.randrange(2)}
               for _ in range(12)]
    assert simulate(matches, seed, 0.5, gaps=True) == model(matches)


def test_one_pair_per_cycle_without_bubbles_between_matches():
    matches = [{"smask": 0b1011, "wmask": 0b0011, "chunk": 1, "wbase": 0, "end": 0},
               {"smask": 0xFF, "wmask": 0x81, "chunk": 2, "wbase": 2, "end": 1},
               {"smask": 0x10, "wmask": 0x10, "chunk": 3, "wbase": 4, "end": 1}]
    dut = InnerJoin(GEOMETRY)
    cycles = []

    async def feed(ctx):
        ctx.set(dut.i.valid, 1)
        for m in matches:
            ctx.set(dut.i.payload, m)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def drain(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = 0
        while len(cycles) < 5:
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            cycle += 1
            if valid:
                cycles.append(cycle)

    amaranth_streams.run(dut, feed, drain)
    assert [b - a for a, b in zip(cycles, cycles[1:])] == [1, 1, 1, 1]


@pytest.mark.parametrize("seed", range(10))
def test_pairs_from_the_shared_activation_memory_carry_their_chunks_words(seed):
    """With a shared activation memory a match brings its chunk's W words, and each of its
    pairs carries them on (the accumulate stage picks the pair's word by its offset)."""
    rng = random.Random(seed)
    matches = [{"smask": rng.randrange(1 << W), "wmask": rng.randrange(1 << W),
                "chunk": rng.randrange(8), "wbase": rng.randrange(200), "end": rng.randrange(2),
                "words": [rng.randrange(16) for _ in range(W)]} for _ in range(8)]
    expected = model(matches)
    pairs = iter(expected)
    for m in matches:
        for _ in range(max(1, bin(m["smask"] & m["wmask"]).count("1"))):
            pair = next(pairs)
            if not pair["empty"]:
                pair["words"] = m["words"]
    shared = replace(GEOMETRY, lockstep=True, shared_banks=2)
    assert simulate(matches, seed, 0.5, gaps=True, geometry=shared) == expected
