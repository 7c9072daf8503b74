"""SkidBuffer in the Amaranth simulator: every word once, in order, with a registered ready."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.gateware.skid_buffer import SkidBuffer
import amaranth_streams


def simulate(words, seed, valid_probability, ready_probability):
    dut = SkidBuffer(8)
    rng = random.Random(seed)
    got = []

    async def feed(ctx):
        for word in words:
            while rng.random() >= valid_probability:
                await ctx.tick()
            await amaranth_streams.put(ctx, dut.i, word)

    async def drain(ctx):
        while len(got) < len(words):
            ready = rng.random() < ready_probability
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(payload)

    amaranth_streams.run(dut, feed, drain)
    return got


@settings(max_examples=40, deadline=None)
@given(words=st.lists(st.integers(0, 255), min_size=1, max_size=20),
       seed=st.integers(0, 1000), valid=st.sampled_from([1.0, 0.6]),
       ready=st.sampled_from([1.0, 0.5, 0.2]))
def test_passes_every_word_once_in_order(words, seed, valid, ready):
    assert simulate(words, seed, valid, ready) == words


def test_full_rate_and_no_latency_when_never_stalled():
    dut = SkidBuffer(8)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for word in range(5):
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, word)
            # same cycle: the word is on the output, and the input is ready
            assert ctx.get(dut.o.valid) and ctx.get(dut.i.ready)
            seen.append(ctx.get(dut.o.payload))
            await ctx.tick()

    amaranth_streams.run(dut, bench)
    assert seen == list(range(5))


def test_ready_does_not_depend_on_the_consumer_in_the_same_cycle():
    dut = SkidBuffer(8)

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, 7)
        for ready in (0, 1, 0, 1):
            ctx.set(dut.o.ready, ready)
            before = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, 1 - ready)
            assert ctx.get(dut.i.ready) == before
            ctx.set(dut.o.ready, ready)
            await ctx.tick()

    amaranth_streams.run(dut, bench)


def test_refuses_a_missing_shape(refuses):
    refuses(lambda: SkidBuffer(None), TypeError, "SkidBuffer: shape must be a shape-castable")
