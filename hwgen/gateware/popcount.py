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


def _groups_of_four(value):
    """``value``'s bits in groups of up to four, lowest first: the leaves of the trees
    below, each output of a leaf one LUT4 (a tree that starts from single bits leaves ABC
    a 2-input first level, and on iCE40 it mapped the 16-bit tests one or two LUTs
    deeper)."""
    bits = [value[i] for i in range(len(value))]
    return [bits[i:i + 4] for i in range(0, len(bits), 4)]


def _any(bits):
    result = Const(0, 1)
    for bit in bits:
        result = result | bit
    return result


def _two_or_more(bits):
    return _any([a & b for i, a in enumerate(bits) for b in bits[i + 1:]])


def at_most_one(value):
    """1 if at most one bit of ``value`` is set: ``popcount(value) <= 1`` as a tree of
    small gates (log4 then log2 of the width levels, no carry chain), for paths where the
    count itself would be too slow."""
    value = Value.cast(value)
    # (any bit set, at most one set) per group, merged pairwise.
    groups = [(_any(bits), ~_two_or_more(bits)) for bits in _groups_of_four(value)]
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
    4-input gates (log4 then log2 of the width levels, no carry chain; each leaf and each
    merge is one LUT4 per output bit on iCE40 and ECP5), where a count would put an adder
    tree on the path."""
    value = Value.cast(value)
    # Per group, its count saturated at 3, as two bits (two, one): 0 = (0, 0), 1 = (0, 1),
    # 2 = (1, 0), 3 or more = (1, 1). A leaf's "one" is its parity, or all four set; merged
    # pairwise without an adder.
    groups = []
    for bits in _groups_of_four(value):
        parity = Const(0, 1)
        for bit in bits:
            parity = parity ^ bit
        every = bits[0]
        for bit in bits[1:]:
            every = every & bit
        groups.append((_two_or_more(bits), parity | (every if len(bits) == 4 else 0)))
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
