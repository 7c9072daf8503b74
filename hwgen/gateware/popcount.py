"""Population count as a balanced adder tree (log2(width) adder levels deep), and the
"at most one / two bits set" tests without any adder.

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


def at_most_one(value):
    """1 if at most one bit of ``value`` is set: ``popcount(value) <= 1`` as a tree of
    small gates (log2(width) levels, no carry chain), for paths where the count itself
    would be too slow."""
    value = Value.cast(value)
    # (any bit set, at most one set) per group, merged pairwise.
    groups = [(value[i], Const(1, 1)) for i in range(len(value))]
    if not groups:
        return Const(1, 1)
    while len(groups) > 1:
        merged = [(a_any | b_any, a_one & b_one & ~(a_any & b_any))
                  for (a_any, a_one), (b_any, b_one) in zip(groups[::2], groups[1::2])]
        if len(groups) % 2:
            merged.append(groups[-1])
        groups = merged
    return groups[0][1]


def at_most_two(value):
    """1 if at most two bits of ``value`` are set: ``popcount(value) <= 2`` as a tree of
    4-input gates (log2(width) levels, no carry chain; each merge is one LUT4 per output
    bit on iCE40 and ECP5), where a count would put an adder tree on the path."""
    value = Value.cast(value)
    # Per group, its count saturated at 3, as two bits (two, one): 0 = (0, 0), 1 = (0, 1),
    # 2 = (1, 0), 3 or more = (1, 1). Merged pairwise without an adder.
    groups = [(Const(0, 1), value[i]) for i in range(len(value))]
    if not groups:
        return Const(1, 1)
    while len(groups) > 1:
        merged = []
        for (a2, a1), (b2, b1) in zip(groups[::2], groups[1::2]):
            three = (a2 & (a1 | b1 | b2)) | (b2 & (b1 | a1))
            merged.append((a2 | b2 | (a1 & b1), (a1 ^ b1) | three))
        if len(groups) % 2:
            merged.append(groups[-1])
        groups = merged
    two, one = groups[0]
    return ~(two & one)
