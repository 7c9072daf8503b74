"""OutputCompressor and SpikeLoader: the spike fiber they write is SpikeFiber's."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.scheduler.fibers import SpikeFiber
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.output_compressor import OutputCompressor
from hwgen.gateware.spike_loader import SpikeLoader
import amaranth_streams

W = 8
GEOMETRY = Geometry(timesteps=4, chunk=W, chunk_bits=3, slot_bits=6, weight_addr_bits=4,
                    weight_bits=4, acc_bits=8, v_bits=8)


def apply_writes(writes, region):
    """Replay write requests into memories; return (words by address, masks by chunk)."""
    words, masks = {}, {}
    for w in writes:
        if w.word_en:
            assert w.word_addr >> (3 + 3) == region
            words[w.word_addr & 0x3F] = w.word
        if w.mask_en:
            assert w.mask_addr >> 3 == region
            masks[w.mask_addr & 0x7] = w.mask
    return words, masks


async def collect(ctx, stream, writes, until, rng, ready_probability):
    """Take writes with random backpressure until ``until()`` and nothing is pending."""
    while not (until() and not ctx.get(stream.valid)):
        ready = rng.random() < ready_probability
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            writes.append(payload)


@settings(max_examples=25, deadline=None)
@given(words=st.lists(st.integers(0, 15), min_size=1, max_size=40), seed=st.integers(0, 99),
       region=st.integers(0, 1), ready=st.sampled_from([1.0, 0.4]))
def test_compressor_writes_the_spike_fiber(words, seed, region, ready):
    """One TPPE's neurons in consecutive slots from a chunk boundary, as the compiler places."""
    dut = OutputCompressor(GEOMETRY)
    rng = random.Random(seed)
    writes, done = [], []
    base = 2 * W

    async def feed(ctx):
        ctx.set(dut.region, region)
        for j, word in enumerate(words):
            await amaranth_streams.put(ctx, dut.i, {
                "word": word, "v": -j, "slot": base + j,
                "chunk_last": int(j == len(words) - 1 or (j + 1) % W == 0)})
        for _ in range(3):
            await ctx.tick()
        done.append(True)

    async def drain(ctx):
        await collect(ctx, dut.o, writes, lambda: done, rng, ready)

    amaranth_streams.run(dut, feed, drain)
    fiber = SpikeFiber.encode([0] * base + words, W)
    got_words, got_masks = apply_writes(writes, region)
    assert got_words == fiber.words
    assert got_masks == {c: m for c, m in enumerate(fiber.masks) if c >= base // W}
    # a write only where something is written: silent neurons cost nothing
    assert len(writes) == sum(1 for j, w in enumerate(words) if w or j == len(words) - 1
                              or (j + 1) % W == 0)


def test_last_layer_results_go_to_the_result_buffer():
    dut = OutputCompressor(GEOMETRY)
    writes = []

    async def feed(ctx):
        ctx.set(dut.last_layer, 1)
        for slot, (word, v) in enumerate([(0, -5), (9, 3), (0, 0)]):
            await amaranth_streams.put(ctx, dut.i, {"word": word, "v": v, "slot": slot,
                                                   "chunk_last": 0})

    async def drain(ctx):
        for _ in range(3):
            writes.append(await amaranth_streams.get(ctx, dut.o))

    amaranth_streams.run(dut, feed, drain)
    assert [(w.result_en, w.word_en, w.mask_en, w.slot, w.word, w.v) for w in writes] == [
        (1, 0, 0, 0, 0, -5), (1, 0, 0, 1, 9, 3), (1, 0, 0, 2, 0, 0)]


@settings(max_examples=15, deadline=None)
@given(words=st.lists(st.integers(0, 15), min_size=1, max_size=30), seed=st.integers(0, 99))
def test_loader_writes_region_0_and_reports_loaded(words, seed):
    dut = SpikeLoader(GEOMETRY, len(words))
    rng = random.Random(seed)
    writes, done = [], []

    async def feed(ctx):
        assert not ctx.get(dut.loaded)
        for word in words:
            await amaranth_streams.put(ctx, dut.i, word)
        # the last words may wait in the loader's input FIFO while the bus stalls; no
        # more than K words per inference are taken meanwhile
        for _ in range(50):
            await ctx.tick()
            assert not ctx.get(dut.i.ready)
            if ctx.get(dut.loaded):
                break
        assert ctx.get(dut.loaded)
        # every word taken; written once the loader is idle (the drain stalls at random)
        for _ in range(200):
            if ctx.get(dut.idle):
                break
            assert not ctx.get(dut.i.ready)
            await ctx.tick()
        assert ctx.get(dut.idle)
        await ctx.tick()
        done.append(True)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await ctx.tick()
        assert not ctx.get(dut.loaded) and ctx.get(dut.i.ready)

    async def drain(ctx):
        await collect(ctx, dut.o, writes, lambda: done, rng, 0.6)

    amaranth_streams.run(dut, feed, drain)
    fiber = SpikeFiber.encode(words, W)
    got_words, got_masks = apply_writes(writes, 0)
    assert got_words == fiber.words
    assert got_masks == dict(enumerate(fiber.masks))


@settings(max_examples=10, deadline=None)
@given(words=st.lists(st.integers(1, 15), min_size=1, max_size=20), seed=st.integers(0, 99))
def test_loader_is_not_idle_while_a_write_waits(words, seed):
    """A write the loader still holds (in its packer's output register, or as a word waiting
    in its input FIFO) is pending: the sequencer starts layer 0 on ``idle``, so ``idle`` must
    stay low until the bus has taken every write."""
    dut = SpikeLoader(GEOMETRY, len(words))
    rng = random.Random(seed)
    expected = len(words)       # every word is nonzero; a chunk's mask rides on its last
    taken = []

    async def bench(ctx):
        sent = 0
        for _ in range(400):
            ctx.set(dut.i.valid, sent < len(words))
            if sent < len(words):
                ctx.set(dut.i.payload, words[sent])
            ready = rng.random() < 0.3
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, valid, idle = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.idle)
            # sampled before this edge: every word in, not every write out
            if sent == len(words) and len(taken) < expected:
                assert not idle, "idle with writes still to come"
            if sent < len(words) and i_ready:
                sent += 1
            if valid and ready:
                taken.append(True)
            if len(taken) == expected:
                break
        for _ in range(3):
            ctx.set(dut.o.ready, 1)
            await ctx.tick()
            assert ctx.get(dut.idle) and not ctx.get(dut.o.valid)

    amaranth_streams.run(dut, bench)
    assert len(taken) == expected


def test_loader_takes_a_word_a_cycle_while_the_bus_keeps_up():
    words = list(range(1, 25))
    dut = SpikeLoader(GEOMETRY, len(words))
    cycles = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle in range(100):
            if ctx.get(dut.loaded) and ctx.get(dut.idle):
                cycles.append(cycle)
                return
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, words[min(len(words) - 1, cycle)])
            await ctx.tick()

    amaranth_streams.run(dut, bench)
    # a word a cycle, after the input FIFO's 2 cycles and the packer's 1
    assert cycles and cycles[0] <= len(words) + 3


def one_chunk_program(tppes):
    """A 4 -> 1 -> 4 chain: every buffer region is a single chunk (spike_depth = W)."""
    import numpy as np

    from hwgen.compiler import hardware_config
    from hwgen.compiler.ir import LIF, Dense, Input, Model, Readout
    from hwgen.compiler.scheduler.program import compile_program
    model = Model("one_chunk", 4)
    model.add(Input("input", (4,), encoding="spikes"))
    model.add(Dense("fc1", np.ones((1, 4), dtype=np.int64), None, weight_bits=2, acc_bits=4),
              "input")
    model.add(LIF("lif1", np.array([1]), v_bits=6), "fc1")
    model.add(Dense("fc2", np.ones((4, 1), dtype=np.int64), None, weight_bits=2, acc_bits=2),
              "lif1")
    model.add(LIF("lif2", np.array([1] * 4), v_bits=6), "fc2")
    model.add(Readout("readout"), "lif2")
    return compile_program(model.validate(),
                           hardware_config.load(None, [f"tppes={tppes}", "chunk=8"]))


def test_one_chunk_regions_are_addressed_by_region():
    """With spike_depth = W the chunk index is a single 0 bit; the slot must still carry it,
    or the region bit lands where the chunk index goes (a 4 -> 1 -> 4 chain once delivered
    nothing to its last layer)."""
    program = one_chunk_program(tppes=2)
    assert program.config.spike_depth == program.config.chunk
    g = Geometry.of(program)
    assert g.slot_bits >= g.offset_bits + g.chunk_bits
    dut = OutputCompressor(g)
    writes = []

    async def feed(ctx):
        ctx.set(dut.region, 1)
        await amaranth_streams.put(ctx, dut.i, {"word": 0b1011, "v": 0, "slot": 0,
                                               "chunk_last": 1})

    async def drain(ctx):
        writes.append(await amaranth_streams.get(ctx, dut.o))

    amaranth_streams.run(dut, feed, drain)
    (write,) = writes
    region_words = 1 << (g.chunk_bits + g.offset_bits)
    assert (write.word_en, write.word_addr, write.word) == (1, region_words, 0b1011)
    assert (write.mask_en, write.mask_addr, write.mask) == (1, 1 << g.chunk_bits, 1)


def test_a_slot_narrower_than_chunk_and_offset_is_refused():
    import pytest
    with pytest.raises(ValueError, match="slot_bits 3 cannot hold a chunk index of 1 bits "
                                         "and an offset of 3 bits"):
        Geometry(timesteps=4, chunk=8, chunk_bits=1, slot_bits=3, weight_addr_bits=4,
                 weight_bits=4, acc_bits=8, v_bits=8)
