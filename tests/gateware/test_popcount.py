"""popcount, at_most_one and at_most_two, evaluated in the Amaranth simulator against Python."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hwgen.gateware.popcount import at_most_one, at_most_two, popcount


def few_bits_set(width, most):
    """Every ``width``-bit value with at most ``most`` bits set: where the tests turn."""
    values = [0]
    for _ in range(most):
        values = sorted({v | 1 << i for v in values for i in range(width)} | set(values))
    return values


# Every width up to 8 and 12 (leaf groups of four, whole and partial), exhaustively.
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 6, 7, 8, 12, 16])
def test_popcount_and_at_most_one_and_two_on_every_value(width):
    value = Signal(width)
    count = Signal(width.bit_length())
    single = Signal()
    pair = Signal()
    m = Module()
    m.d.comb += [count.eq(popcount(value)), single.eq(at_most_one(value)),
                 pair.eq(at_most_two(value))]
    sim = Simulator(m)
    values = range(1 << width) if width <= 12 else \
        few_bits_set(width, 4) + [0xFFFF, 0x5555, 0x1234, 0xFFFE, 0x7FFF, 0xF0F0]

    async def bench(ctx):
        for v in values:
            ctx.set(value, v)
            assert ctx.get(count) == bin(v).count("1"), v
            assert ctx.get(single) == (bin(v).count("1") <= 1), v
            assert ctx.get(pair) == (bin(v).count("1") <= 2), v

    sim.add_testbench(bench)
    sim.run()
