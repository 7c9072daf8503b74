"""Population count as a balanced adder tree (log2(width) adder levels deep).

Amaranth's ``sum()`` over bits builds a linear chain of adders, which Yosys does not
rebalance; the prefix popcounts of the inner join sit on its critical path.
"""

from amaranth.hdl import Const, Value


def popcount(value):
    """Number of set bits of ``value``, as an unsigned Value just wide enough."""
    value = Value.cast(value)
    terms = [value[i] for i in range(len(value))]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1] + 0)
        terms = paired
    return terms[0]
