"""The laggy join's accumulators: one pseudo-accumulator fast, T corrections later.

For a neuron with bias b and matched pairs (w_i, word_i), the input current at step t is

    I[t] = b + sum_i w_i * word_i[t]
         = (b + sum_i w_i) - sum_i w_i * (1 - word_i[t])
         =      pseudo     -            corr[t]

``pseudo`` needs only the weights, so it is accumulated on the fast side, one pair per
cycle, as soon as a weight leaves its memory. ``corr[t]`` needs the spike words, which the
slow side delivers later, in the same pair order; the weight waits for its word in the
weight FIFO. The sum is exact in two's complement: every partial sum is taken modulo
2^(acc_bits + 1) and the final I[t] fits (its bound is what sized acc_bits), so no
intermediate overflow can change it.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .geometry import Geometry

# Cycles a weight FIFO slot spends between a pop and the next entry readable there: the
# freed slot shows in ``w_rdy`` a cycle later, and a buffered FIFO shows a write two cycles
# later; without these entries beyond the lead, a walker as fast as the fast side would
# wait on the FIFO.
ROUND_TRIP = 2


def weight_value(geometry):
    """A matched weight from the fast side (its value is ignored when ``empty``)."""
    return data.StructLayout({"weight": signed(geometry.weight_bits), "end": unsigned(1),
                              "empty": unsigned(1)})


def spike_word(geometry):
    """A matched spike word from the slow side (its value is ignored when ``empty``)."""
    return data.StructLayout({"word": unsigned(geometry.lanes), "end": unsigned(1),
                              "empty": unsigned(1)})


class LaggyAccumulator(wiring.Component):
    """Matched weights and, later, their spike words in; a neuron's T input currents out.

    Ports: ``weights`` (:func:`weight_value`, the fast side), ``words`` (:func:`spike_word`,
    the slow side: one per element of ``weights``, same order, so both sides carry the same
    ``end``/``empty`` flags), ``headers`` (neuron headers in neuron order; the head is the
    header of the neuron whose weights arrive), ``o`` (``geometry.lif_input``: the currents
    I[t] = bias + sum of w * word[t], and the header); ``idle``.

    ``weights.ready`` depends on registers only; ``words.ready`` on its own ``end`` flag (a
    neuron's last word waits for that neuron's pseudo-sum) and on ``o.ready`` while a
    finished neuron waits, as the dual join's accumulate stage does.

    Throughput: one weight and one word per cycle, concurrently. The fast side runs ahead
    of the slow side by at most ``fifo_depth + 2`` pairs (the weight FIFO: ``fifo_depth``
    of lead, plus the 2 cycles a slot takes from a pop back to a readable entry, which a
    slow side as fast as the fast side would otherwise wait for) and ``fifo_depth`` neurons
    (the pending FIFO: one entry per neuron, so the round trip matters only for neurons of
    one or two pairs); a finished neuron waits in the correction accumulators until ``o``
    takes it (they are also its output register), stalling the slow side.
    Latency: a neuron's currents are valid the cycle after its last word is taken (at the
    earliest 2 cycles after its last weight: the buffered FIFOs).
    Resources: one pseudo-accumulator (acc_bits + 1 bits, one adder); T correction
    accumulators of acc_bits + 1 bits, each a three-operand add on a neuron's last word
    (the correction plus the pending pseudo-sum); the weight FIFO, ``fifo_depth + 2`` x
    weight_bits (a weight waits there for its word: the slow side's lag in pairs); the
    pending FIFO, ``fifo_depth`` x (acc_bits + 1 + theta, slot, chunk_last) (a neuron's
    pseudo-sum and header wait there for its last word: the lag in neurons).
    """

    def __init__(self, geometry, fifo_depth=4):
        if not isinstance(geometry, Geometry):
            raise TypeError(f"LaggyAccumulator: geometry must be a Geometry, not {geometry!r}")
        if not isinstance(fifo_depth, int) or isinstance(fifo_depth, bool) or fifo_depth < 2:
            raise ValueError(f"LaggyAccumulator: fifo_depth {fifo_depth!r} must be an integer "
                             f"of at least 2")
        self.geometry = geometry
        self.fifo_depth = fifo_depth
        # the header's fields but the bias (already in the pseudo-sum)
        fields = {"pseudo": signed(geometry.acc_bits + 1),
                  "theta": unsigned(geometry.theta_bits), "slot": unsigned(geometry.slot_bits),
                  "chunk_last": unsigned(1)}
        if geometry.leak_bits:
            fields["leak"] = unsigned(geometry.leak_bits)
        if geometry.max_pool:
            fields["partial"] = unsigned(1)
        self.pending_entry = data.StructLayout(fields)
        super().__init__({
            "weights": In(stream.Signature(weight_value(geometry))),
            "words": In(stream.Signature(spike_word(geometry))),
            "headers": In(stream.Signature(geometry.neuron_header)),
            "o": Out(stream.Signature(geometry.lif_input)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        T = g.lanes
        width = signed(g.acc_bits + 1)

        m.submodules.weight_fifo = weight_fifo = fifo.SyncFIFOBuffered(
            width=g.weight_bits, depth=self.fifo_depth + ROUND_TRIP)
        m.submodules.pending_fifo = pending_fifo = fifo.SyncFIFOBuffered(
            width=self.pending_entry.size, depth=self.fifo_depth)

        # ---- fast side: pseudo = bias + every matched weight ----
        pseudo = Signal(width)
        first = Signal(init=1)
        incoming = self.weights.payload
        header = self.headers.payload
        matched_weight = Signal(signed(g.weight_bits))
        m.d.comb += matched_weight.eq(Mux(incoming.empty, 0, incoming.weight))
        pseudo_next = Signal(width)
        m.d.comb += pseudo_next.eq(Mux(first, header.bias, pseudo) + matched_weight)
        # Both FIFOs are checked for room on every pair, not only where they are written:
        # their ``w_rdy`` are registers, so ``ready`` stays free of the payload.
        m.d.comb += self.weights.ready.eq(weight_fifo.w_rdy & pending_fifo.w_rdy
                                          & self.headers.valid)
        take = self.weights.valid & self.weights.ready
        pending_in = Signal(self.pending_entry)
        m.d.comb += [
            pending_in.pseudo.eq(pseudo_next), pending_in.theta.eq(header.theta),
            pending_in.slot.eq(header.slot), pending_in.chunk_last.eq(header.chunk_last),
            *([pending_in.leak.eq(header.leak)] if g.leak_bits else []),
            *([pending_in.partial.eq(header.partial)] if g.max_pool else []),
            # An empty element queues weight 0, so its word (whatever the TPPE read) adds
            # no correction.
            weight_fifo.w_data.eq(matched_weight),
            weight_fifo.w_en.eq(take),
            pending_fifo.w_data.eq(pending_in),
            pending_fifo.w_en.eq(take & incoming.end),
            self.headers.ready.eq(take & incoming.end),
        ]
        with m.If(take):
            m.d.sync += [pseudo.eq(pseudo_next), first.eq(incoming.end)]

        # ---- slow side: corr[t] kept negated, in the registers that then hold I[t] ----
        acc = [Signal(width, name=f"corr_{t}") for t in range(T)]
        corr_first = Signal(init=1)
        held = Signal()
        held_entry = Signal(self.pending_entry)
        word = self.words.payload
        weight = Signal(signed(g.weight_bits))
        m.d.comb += weight.eq(weight_fifo.r_data)
        pending = Signal(self.pending_entry)
        m.d.comb += pending.eq(pending_fifo.r_data)
        m.d.comb += self.words.ready.eq(weight_fifo.r_rdy
                                        & (~word.end | pending_fifo.r_rdy)
                                        & (~held | self.o.ready))
        consume = self.words.valid & self.words.ready
        m.d.comb += [weight_fifo.r_en.eq(consume),
                     pending_fifo.r_en.eq(consume & word.end)]
        for t in range(T):
            correction = Mux(word.word[t], 0, weight)
            base = Mux(corr_first, 0, acc[t])
            with m.If(consume):
                m.d.sync += acc[t].eq(base + Mux(word.end, pending.pseudo, 0) - correction)
        with m.If(consume):
            m.d.sync += corr_first.eq(word.end)
        with m.If(consume & word.end):
            m.d.sync += [held.eq(1), held_entry.eq(pending)]
        with m.Elif(self.o.ready):
            m.d.sync += held.eq(0)

        m.d.comb += [
            self.o.valid.eq(held),
            self.o.payload.header.theta.eq(held_entry.theta),
            self.o.payload.header.slot.eq(held_entry.slot),
            self.o.payload.header.chunk_last.eq(held_entry.chunk_last),
            *([self.o.payload.header.leak.eq(held_entry.leak)] if g.leak_bits else []),
            *([self.o.payload.header.partial.eq(held_entry.partial)] if g.max_pool else []),
        ]
        m.d.comb += [self.o.payload.sums[t].eq(acc[t]) for t in range(T)]
        m.d.comb += self.idle.eq(~held & (weight_fifo.level == 0) & (pending_fifo.level == 0))
        return m
