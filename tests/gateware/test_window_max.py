"""WindowMax in the Amaranth simulator against a Python model: partial rows fold into a
running maximum, the last row of a window leaves with the maximum, other rows pass."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.gateware.geometry import Geometry
from hwgen.gateware.window_max import WindowMax
import amaranth_streams

LANES, ACC = 3, 6


def geometry(max_pool=True):
    return Geometry(timesteps=LANES, chunk=4, chunk_bits=2, slot_bits=4, weight_addr_bits=4,
                    weight_bits=3, acc_bits=ACC, v_bits=6, max_pool=max_pool)


def model(rows):
    """Rows [(sums, partial, slot)] -> what leaves: [(sums, slot)]."""
    out, running = [], None
    for sums, partial, slot in rows:
        running = sums if running is None else [max(a, b) for a, b in zip(running, sums)]
        if not partial:
            out.append((running, slot))
            running = None
    return out


def simulate(rows, seed, valid_probability, ready_probability):
    dut = WindowMax(geometry())
    rng = random.Random(seed)
    got = []
    expected = len(model(rows))

    async def feed(ctx):
        for sums, partial, slot in rows:
            while rng.random() >= valid_probability:
                await ctx.tick()
            await amaranth_streams.put(ctx, dut.i, {
                "sums": sums, "header": {"theta": 1, "bias": 0, "slot": slot,
                                         "chunk_last": 0, "partial": partial}})

    async def drain(ctx):
        while len(got) < expected:
            ready = rng.random() < ready_probability
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(([int(s) for s in payload.sums], int(payload.header.slot)))

    amaranth_streams.run(dut, feed, drain)
    return got


current = st.integers(-(1 << (ACC - 1)), (1 << (ACC - 1)) - 1)
window = st.lists(st.tuples(st.lists(current, min_size=LANES, max_size=LANES),
                            st.integers(0, 15)), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None)
@given(windows=st.lists(window, min_size=1, max_size=6), seed=st.integers(0, 1000),
       valid=st.sampled_from([1.0, 0.6]), ready=st.sampled_from([1.0, 0.5, 0.2]))
def test_each_window_leaves_once_with_its_maximum(windows, seed, valid, ready):
    rows = [(sums, int(i < len(w) - 1), slot) for w in windows
            for i, (sums, slot) in enumerate(w)]
    assert simulate(rows, seed, valid, ready) == model(rows)


def test_a_row_with_no_partial_before_it_passes_unchanged_and_idle_follows_the_window():
    dut = WindowMax(geometry())

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, {"sums": [-5, 3, 0], "header": {"slot": 2, "partial": 0}})
        assert ctx.get(dut.o.valid) and [int(s) for s in ctx.get(dut.o.payload.sums)] == \
            [-5, 3, 0]
        ctx.set(dut.i.payload, {"sums": [-5, 3, 0], "header": {"slot": 2, "partial": 1}})
        assert not ctx.get(dut.o.valid) and ctx.get(dut.i.ready)
        await ctx.tick()
        assert not ctx.get(dut.idle)             # inside a window
        ctx.set(dut.i.payload, {"sums": [-7, 4, -1], "header": {"slot": 3, "partial": 0}})
        assert [int(s) for s in ctx.get(dut.o.payload.sums)] == [-5, 4, 0]
        await ctx.tick()
        assert ctx.get(dut.idle)

    amaranth_streams.run(dut, bench)


def test_invalid_parameters_are_refused(refuses):
    refuses(lambda: WindowMax(3), TypeError, "WindowMax: geometry must be a Geometry, not 3")
    refuses(lambda: WindowMax(geometry(max_pool=False)), ValueError,
            "WindowMax: the geometry has no max pooling")
