"""popcount, at_most_one and at_most_two, evaluated in the Amaranth simulator against Python."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hwgen.gateware.popcount import at_most_one, at_most_two, popcount


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 16])
def test_popcount_and_at_most_one_and_two_on_every_value(width):
    value = Signal(width)
    count = Signal(width.bit_length())
    single = Signal()
    pair = Signal()
    m = Module()
    m.d.comb += [count.eq(popcount(value)), single.eq(at_most_one(value)),
                 pair.eq(at_most_two(value))]
    sim = Simulator(m)
    values = range(1 << width) if width <= 8 else \
        [0, 1, 0xFFFF, 0x8000, 0x8001, 0x0180, 0x5555, 0x1234, 0x4000, 0xC000, 0x8101,
         0x0003, 0x0007, 0xE000, 0x1001, 0x1011]

    async def bench(ctx):
        for v in values:
            ctx.set(value, v)
            assert ctx.get(count) == bin(v).count("1"), v
            assert ctx.get(single) == (bin(v).count("1") <= 1), v
            assert ctx.get(pair) == (bin(v).count("1") <= 2), v

    sim.add_testbench(bench)
    sim.run()
