"""LoAS's laggy inner join: the weight side fast, the spike side resolved later.

The dual join (:mod:`.inner_join`) computes both prefix popcounts of every matched bit at
once. LoAS (Yin et al., MICRO 2024) observed that the weight is all the accumulation needs
up front: if every matched weight is added to one *pseudo*-accumulator as though the
spike word were all ones, the spike word itself is only needed later, to take the weight
back out of the steps where the word has a 0. So only the weight-side prefix popcount has
to keep pace; the spike-side offset may lag behind, computed by a slow, cheap circuit, as
long as small FIFOs hold the work in between.

This unit splits each chunk match into two streams, in the same order (matched bits lowest
first, chunk matches in arrival order; an empty match, which only ends a neuron, gives one
``empty`` element on each):

- ``weights``: the fast side, one matched pair per cycle, like the dual join without its
  spike-side popcount: the pair's weight address (chunk base + prefix popcount of the
  weight mask below the bit).
- ``spikes``: the slow side. A walker visits the set bits of the spike mask one per
  cycle, lowest first, counting them: when a visited bit is also a matched bit the count
  *is* its prefix popcount, and the pair's (chunk, offset) is emitted. No popcount tree, no
  per-bit adder: a counter and a lowest-set-bit selector. It stops at the chunk's last
  matched bit, so a chunk match costs (set spike-mask bits up to and including its
  highest matched bit) cycles: at least its matched pairs, more when spikes sit between
  them. Chunk matches wait for the walker in a FIFO.
"""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .geometry import Geometry
from .popcount import at_most_one, at_most_two, popcount


def weight_pair(geometry):
    """The fast side's element: where the matched weight sits."""
    return data.StructLayout({"waddr": unsigned(geometry.weight_addr_bits),
                              "end": unsigned(1), "empty": unsigned(1)})


def spike_pair(geometry):
    """The slow side's element: where the matched spike word sits."""
    return data.StructLayout({"chunk": unsigned(geometry.fiber_chunk_bits),
                              "offset": unsigned(geometry.offset_bits),
                              "end": unsigned(1), "empty": unsigned(1)})


def walk_cycles(smask, wmask):
    """Cycles the spike-side walker spends on one chunk match (the cost model's term): the
    set bits of ``smask`` up to and including the highest bit of ``smask & wmask``; 1 for a
    match with no matched bit (it only carries a neuron's end)."""
    matched = smask & wmask
    if not matched:
        return 1
    return bin(smask & ((1 << matched.bit_length()) - 1)).count("1")


def _at_or_below_highest(m, value):
    """The bits at or below ``value``'s highest set bit (0 if none): with the bits reversed,
    ``r | -r`` sets every bit from the lowest set one up, in one carry chain."""
    width = len(value)
    flipped = Cat(*reversed([value[i] for i in range(width)]))
    spread = Signal(width)
    m.d.comb += spread.eq(flipped | -flipped)
    return Cat(*reversed([spread[i] for i in range(width)]))


class LaggyJoin(wiring.Component):
    """Chunk matches in; weight addresses (fast) and spike-word addresses (slow) out.

    Ports: ``i`` takes chunk matches (``geometry.chunk_match``); ``weights`` gives
    :func:`weight_pair` elements, ``spikes`` :func:`spike_pair` elements, one of each per
    matched pair, in the same order; ``idle`` is high when nothing is in flight.

    Throughput: ``weights``, one pair per cycle with no bubble between chunk matches, as
    the dual join; ``spikes``, one set spike-mask bit per cycle (see :func:`walk_cycles`).
    The fast side runs ahead of the walker by at most ``fifo_depth`` chunk matches (held in
    the walk FIFO) and is otherwise stalled only by its own output.
    Latency: ``weights`` 2 cycles (select the lowest matched bit; then the weight-mask
    popcount and the address add), ``spikes`` at least 4 cycles from acceptance (the
    buffered walk FIFO's 2, the walker, its output register).
    Resources: one W-bit popcount tree (weight side only) and the address adder; a W-bit
    carry chain that trims each spike mask above its highest matched bit on its way into
    the walk FIFO (so the walker's "last bit" test is a gate tree on its own registers); the
    walker: two W-bit registers, a lowest-set-bit selector (one W-bit carry chain) and an
    offset counter; the walk FIFO, ``fifo_depth`` entries of 2W + fiber_chunk_bits + 1 bits (the
    spike mask, the matched bits, the chunk index and the end flag). ``fifo_depth`` entries
    let the fast side run that many chunk matches ahead, which is what lets the walker
    keep working while the fetch spends a cycle on each neuron header; the TPPE's weight
    FIFO bounds the lead in pairs anyway.
    """

    def __init__(self, geometry, fifo_depth=4):
        if not isinstance(geometry, Geometry):
            raise TypeError(f"LaggyJoin: geometry must be a Geometry, not {geometry!r}")
        if not isinstance(fifo_depth, int) or isinstance(fifo_depth, bool) or fifo_depth < 2:
            raise ValueError(f"LaggyJoin: fifo_depth {fifo_depth!r} must be an integer of at "
                             f"least 2")
        self.geometry = geometry
        self.fifo_depth = fifo_depth
        self.walk_entry = data.StructLayout({
            "smask": unsigned(geometry.chunk), "matched": unsigned(geometry.chunk),
            "chunk": unsigned(geometry.fiber_chunk_bits), "end": unsigned(1)})
        super().__init__({
            "i": In(stream.Signature(geometry.chunk_match)),
            "weights": Out(stream.Signature(weight_pair(geometry))),
            "spikes": Out(stream.Signature(spike_pair(geometry))),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry

        m.submodules.walk_fifo = walk_fifo = fifo.SyncFIFOBuffered(
            width=self.walk_entry.size, depth=self.fifo_depth)

        # ---- fast side: the dual join's structure without the spike-side popcount ----
        loaded = Signal()
        current_wmask = Signal(g.chunk)
        current_wbase = Signal(g.weight_addr_bits)
        current_end = Signal()
        remaining = Signal(g.chunk)
        single = Signal()           # at most one bit remaining; a register: it heads ``i.ready``
        sel_valid = Signal()
        sel_wmask_below = Signal(g.chunk)
        sel_wbase = Signal(g.weight_addr_bits)
        sel_end = Signal()
        sel_empty = Signal()

        advance = ~self.weights.valid | self.weights.ready
        take = ~sel_valid | advance
        finishing = loaded & take & single
        # A match enters both sides at once, so it needs room in the walk FIFO (whose
        # ``w_rdy`` is a register) as well as in the fast side.
        m.d.comb += self.i.ready.eq((~loaded | finishing) & walk_fifo.w_rdy)

        lowest = Signal(g.chunk)
        m.d.comb += lowest.eq(remaining & -remaining)
        with m.If(loaded & take):
            m.d.sync += [
                sel_valid.eq(1),
                sel_wmask_below.eq(current_wmask & (lowest - 1)),
                sel_wbase.eq(current_wbase),
                sel_end.eq(current_end & single),
                sel_empty.eq(remaining == 0),
                remaining.eq(remaining & ~lowest),
                single.eq(at_most_two(remaining)),   # at most one left after this bit
            ]
            with m.If(single):
                m.d.sync += loaded.eq(0)
        with m.Elif(take):
            m.d.sync += sel_valid.eq(0)

        accepted = self.i.valid & self.i.ready
        matched_in = Signal(g.chunk)
        m.d.comb += matched_in.eq(self.i.payload.smask & self.i.payload.wmask)
        with m.If(accepted):
            m.d.sync += [current_wmask.eq(self.i.payload.wmask),
                         current_wbase.eq(self.i.payload.wbase),
                         current_end.eq(self.i.payload.end),
                         remaining.eq(matched_in),
                         single.eq(at_most_one(matched_in)), loaded.eq(1)]
        entry = Signal(self.walk_entry)
        m.d.comb += [
            entry.smask.eq(self.i.payload.smask & _at_or_below_highest(m, matched_in)),
            entry.matched.eq(matched_in),
            entry.chunk.eq(self.i.payload.chunk), entry.end.eq(self.i.payload.end),
            walk_fifo.w_data.eq(entry),
            walk_fifo.w_en.eq(accepted),
        ]

        with m.If(sel_valid & advance):
            m.d.sync += [
                self.weights.valid.eq(1),
                self.weights.payload.waddr.eq(sel_wbase + popcount(sel_wmask_below)),
                self.weights.payload.end.eq(sel_end),
                self.weights.payload.empty.eq(sel_empty),
            ]
        with m.Elif(advance):
            m.d.sync += self.weights.valid.eq(0)

        # ---- slow side: walk the spike mask's set bits, one per cycle ----
        walking = Signal()
        # Spike-mask bits not yet visited, trimmed above the highest matched bit as they
        # entered the FIFO: the walk ends when at most one is left, a test of registers
        # with no carry chain, so the FIFO's read enable does not wait for ``visit``.
        spikes_left = Signal(g.chunk)
        matched_left = Signal(g.chunk)      # matched bits not yet emitted
        walk_chunk = Signal(g.fiber_chunk_bits)
        walk_end = Signal()
        offset = Signal(g.offset_bits)      # set spike-mask bits visited so far

        head = Signal(self.walk_entry)
        m.d.comb += head.eq(walk_fifo.r_data)
        out_free = ~self.spikes.valid | self.spikes.ready
        step = walking & out_free
        visit = Signal(g.chunk)
        m.d.comb += visit.eq(spikes_left & -spikes_left)
        hit = (visit & matched_left) != 0
        no_match = matched_left == 0        # an empty match: it only ends its neuron
        last_visit = at_most_one(spikes_left)
        done = step & last_visit
        m.d.comb += walk_fifo.r_en.eq(~walking | done)

        with m.If(step):
            m.d.sync += [spikes_left.eq(spikes_left & ~visit),
                         matched_left.eq(matched_left & ~visit),
                         offset.eq(offset + 1)]
        with m.If(walk_fifo.r_rdy & (~walking | done)):
            m.d.sync += [walking.eq(1), spikes_left.eq(head.smask),
                         matched_left.eq(head.matched), walk_chunk.eq(head.chunk),
                         walk_end.eq(head.end), offset.eq(0)]
        with m.Elif(done):
            m.d.sync += walking.eq(0)

        with m.If(step & (hit | no_match)):
            m.d.sync += [
                self.spikes.valid.eq(1),
                self.spikes.payload.chunk.eq(walk_chunk),
                self.spikes.payload.offset.eq(offset),
                self.spikes.payload.end.eq(walk_end & last_visit),
                self.spikes.payload.empty.eq(no_match),
            ]
        with m.Elif(self.spikes.ready):
            m.d.sync += self.spikes.valid.eq(0)

        m.d.comb += self.idle.eq(~loaded & ~sel_valid & ~self.weights.valid & ~walking
                                 & (walk_fifo.level == 0) & ~self.spikes.valid)
        return m
