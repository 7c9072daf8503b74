"""The inner join: chunk matches in, one matched (spike word, weight) pair per cycle out.

A chunk match (from :class:`~hwgen.gateware.fiber_fetch.FiberFetch`) carries a spike mask and a
weight mask. For each set bit of their AND, lowest first, the join emits the pair's
two offsets: the prefix popcount of the spike mask below the bit (where the spike word
sits in its chunk) and of the weight mask below the bit (added to the chunk's weight base:
where the weight sits). A match with no set bit stands for a neuron without any matched
pair and passes through as one ``empty`` pair that only marks the neuron's end.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .popcount import at_most_one, at_most_two, popcount


class InnerJoin(wiring.Component):
    """Dual prefix-sum inner join.

    Ports: ``i`` takes chunk matches (``geometry.chunk_match``), ``o`` gives matched pairs
    (``geometry.matched_pair``); ``idle`` is high when nothing is in flight.

    Throughput: one pair per cycle, with no bubble between chunk matches (the next match
    is taken in the cycle the current one's last bit goes out).
    Latency: 2 cycles (select the lowest set bit; then the two prefix popcounts and the
    weight address), so neither a W-bit carry chain nor a popcount tree is in series with
    the other.
    Resources: two W-bit popcount trees, the at-most-one and at-most-two gate trees, one
    weight-address adder, ~5W + address flops; with a shared activation memory
    (``geometry.shared_banks``) a match's W words ride along, in two more W x T_c
    registers (stage 2 and the output), and each pair carries them out.
    The input is registered: ``ready`` closes a loop through the feeding FIFO's pointers,
    so it is computed from registers only (on iCE40 that loop was once the critical path).
    """

    def __init__(self, geometry):
        self.geometry = geometry
        super().__init__({
            "i": In(stream.Signature(geometry.chunk_match)),
            "o": Out(stream.Signature(geometry.matched_pair)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry

        # Stage 1: the current match, its matched bits still to emit, and whether at most
        # one is left. ``ready``, which closes a loop through the input FIFO's pointers,
        # and the "last bit" test come from that flag, so no carry chain feeds either; the
        # flag itself is a tree of small gates over the bits (a count of them, loaded from
        # the FIFO through a popcount tree, was on the iCE40's critical path).
        loaded = Signal()
        current = Signal(g.chunk_match)
        remaining = Signal(g.chunk)
        single = Signal()           # at most one bit remaining; a register: it heads ``ready``
        # Stage 2: one selected bit, as "masks below it".
        sel_valid = Signal()
        sel_smask_below = Signal(g.chunk)
        sel_wmask_below = Signal(g.chunk)
        sel_chunk = Signal(g.fiber_chunk_bits)
        sel_wbase = Signal(g.weight_addr_bits)
        sel_end = Signal()
        sel_empty = Signal()
        if g.shared_banks:
            sel_words = Signal.like(self.i.payload.words)

        # ``jammed``: a register equal to sel_valid & o.valid (both stages full), kept
        # beside them so that ``take``, and with it ``ready``, is one input narrower: one
        # LUT less between the registers and the input FIFO's read enable (on iCE40 that
        # path, fanned out to the FIFO and the current match, was critical).
        jammed = Signal()
        advance = ~self.o.valid | self.o.ready            # stage 2 -> output moves
        take = ~jammed | self.o.ready                       # stage 1 -> stage 2 moves
        m.d.sync += jammed.eq(Mux(take, loaded, sel_valid) & Mux(advance, sel_valid,
                                                                  self.o.valid))
        finishing = loaded & take & single
        # ``ready`` is kept as a net of its own (one LUT of four registers), so the loop
        # from ``loaded`` back to itself is that LUT and one more: left to itself, ABC merged
        # it with the input FIFO's read logic into five levels (on iCE40 the critical path).
        # ``loaded`` falls if no match is offered as the stage empties.
        ready = Signal(attrs={"keep": 1})
        m.d.comb += [ready.eq(~loaded | finishing), self.i.ready.eq(ready)]

        # The bits below the lowest set bit of ``remaining``, and the bits above it, both
        # from one decrement: r - 1 clears the lowest set bit and sets those below. (As
        # lowest = r & -r and then lowest - 1 it was two carry chains in series, the
        # iCE40's critical path.) With nothing remaining, ``below`` is all ones.
        decremented = Signal(g.chunk)
        m.d.comb += decremented.eq(remaining - 1)
        below = Signal(g.chunk)
        rest = Signal(g.chunk)
        m.d.comb += [below.eq(~remaining & decremented), rest.eq(remaining & decremented)]
        with m.If(loaded & take):
            m.d.sync += [
                sel_valid.eq(1),
                sel_smask_below.eq(current.smask & below),
                sel_wmask_below.eq(current.wmask & below),
                sel_chunk.eq(current.chunk), sel_wbase.eq(current.wbase),
                sel_end.eq(current.end & single),
                sel_empty.eq(remaining == 0),
            ]
            if g.shared_banks:
                m.d.sync += sel_words.eq(current.words)
        with m.Elif(take):
            m.d.sync += sel_valid.eq(0)

        # Stage 1's registers load whenever it is ready (empty, or giving its last bit),
        # whether or not a match is offered: without one, ``loaded`` falls and the rest is
        # not looked at until a match is. So ``ready`` alone enables them, and the flag's
        # gate tree (``one``, a net of its own like ``ready``) meets the select only at the
        # end: ABC otherwise folded the select into the tree, five LUTs from ``single``
        # back to itself (on iCE40 the critical path).
        matched = Signal(g.chunk)
        one = Signal(attrs={"keep": 1})
        m.d.comb += [matched.eq(self.i.payload.smask & self.i.payload.wmask),
                     one.eq(at_most_one(matched))]
        with m.If(ready):
            m.d.sync += [loaded.eq(self.i.valid), current.eq(self.i.payload),
                         remaining.eq(matched), single.eq(one)]
        with m.Elif(take):                  # loaded (not ready), giving a bit: not its last
            m.d.sync += [remaining.eq(rest),
                         # after this bit, at most one is left if at most two are now
                         single.eq(at_most_two(remaining))]

        with m.If(sel_valid & advance):
            if g.shared_banks:
                # a match from the shared activation memory brought its chunk's words
                m.d.sync += self.o.payload.words.eq(sel_words)
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.chunk.eq(sel_chunk),
                self.o.payload.offset.eq(popcount(sel_smask_below)),
                self.o.payload.waddr.eq(sel_wbase + popcount(sel_wmask_below)),
                self.o.payload.end.eq(sel_end),
                self.o.payload.empty.eq(sel_empty),
            ]
        with m.Elif(advance):
            m.d.sync += self.o.valid.eq(0)

        m.d.comb += self.idle.eq(~loaded & ~sel_valid & ~self.o.valid)
        return m
