"""ExitCheck: the spike counts and the early-exit rule in hardware, against the Python rule
(compiler/ir/early_exit.py)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.ir.early_exit import decided
from hwgen.gateware.early_exit import ExitCheck
import amaranth_streams

T, LANES = 8, 2


def hardware_decisions(outputs, rule, rounds):
    """``rounds``: [(words per output (list of ints), remaining steps)]: each round adds one
    word per output, then asks; returns the decisions and the cycles each took."""
    dut = ExitCheck(outputs, T, LANES, rule)
    found = []

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for words, remaining in rounds:
            for slot, word in enumerate(words):
                ctx.set(dut.add, 1)
                ctx.set(dut.slot, slot)
                ctx.set(dut.word, word)
                await ctx.tick()
            ctx.set(dut.add, 0)
            ctx.set(dut.check, 1)
            ctx.set(dut.remaining, remaining)
            assert ctx.get(dut.busy)                   # busy from the request on
            await ctx.tick()
            ctx.set(dut.check, 0)
            cycles = 1
            while ctx.get(dut.busy):
                await ctx.tick()
                cycles += 1
            found.append((bool(ctx.get(dut.exit)), cycles))

    amaranth_streams.run(dut, bench)
    return found


words = st.integers(0, (1 << LANES) - 1)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.lists(words, min_size=n, max_size=n), min_size=1, max_size=3))),
    st.sampled_from(["certain", 1, 2]))
def test_the_hardware_decides_like_the_rule(drawn, rule):
    outputs, chunks = drawn
    rounds, counts = [], np.zeros(outputs, dtype=np.int64)
    expected = []
    for c, chunk_words in enumerate(chunks):
        remaining = T - (c + 1) * LANES
        counts = counts + [bin(w).count("1") for w in chunk_words]
        rounds.append((chunk_words, remaining))
        expected.append(bool(decided(counts[np.newaxis], remaining, rule)[0]))
    found = hardware_decisions(outputs, rule, rounds)
    assert [decision for decision, _ in found] == expected
    assert all(cycles == 2 * outputs + 2 for _, cycles in found)


def test_ties_go_to_the_lowest_index():
    # counts 1 and 3 (class 1 leads), one step left: class 0 reaches at most 2: certain.
    # Two steps left: it could tie at 3, and a tie goes to class 0: not certain.
    assert hardware_decisions(2, "certain", [([0b01, 0b11], 1)])[0][0] is False
    assert hardware_decisions(2, "certain", [([0b01, 0b11], 0)])[0][0] is True


def test_parameters_are_validated(refuses):
    refuses(lambda: ExitCheck(3, 8, 2, "off"), ValueError,
            "ExitCheck: the rule is 'off'; generate no exit check")
    refuses(lambda: ExitCheck(0, 8, 2, "certain"), ValueError, "ExitCheck: 0 outputs")
    refuses(lambda: ExitCheck(3, 8, 3, "certain"), ValueError,
            "ExitCheck: lanes 3 must divide timesteps 8")
