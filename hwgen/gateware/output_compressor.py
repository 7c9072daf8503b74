"""Output compression: neuron results in, writes of the next layer's spike fiber out.

A TPPE's neurons occupy consecutive slots of the next layer's input, starting at a chunk
boundary (see :mod:`hwgen.compiler.scheduler.program`), so the TPPE can build whole chunks of the
next spike fiber by itself: a nonzero word is written at ``chunk*W + rank`` (rank = words
already written in the chunk) and sets its mask bit; a silent neuron writes nothing; the
chunk's mask is written with its last neuron. In the last layer every result (word and
final membrane) goes to the result buffer by output index instead.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class OutputCompressor(wiring.Component):
    """Packs a stream of neuron results into spike-fiber writes.

    Ports: ``i`` neuron results (``geometry.lif_output``), in slot order within each
    chunk; ``region`` the region of the spike buffer to write; ``last_layer`` route results to
    the result buffer; ``keep`` in the last layer, write its spike fiber as well (a
    recurrent output layer reads it back), in the same requests; ``o`` write requests;
    ``idle`` nothing held.

    Throughput: with ``registered_ready`` (default) one neuron per two cycles at most,
    which the LIF stage upstream never exceeds; otherwise one per cycle, with ``o.ready``
    passed combinationally to ``i.ready``. Latency: 1 cycle (registered output).
    Resources: a W-bit mask accumulator, a rank counter and the output register.
    """

    def __init__(self, geometry, *, registered_ready=True):
        self.geometry = geometry
        self.registered_ready = registered_ready
        super().__init__({
            "i": In(stream.Signature(geometry.lif_output)),
            "region": In(range(geometry.regions)),
            "last_layer": In(1),
            "keep": In(1),
            "o": Out(stream.Signature(geometry.write_request)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        mask = Signal(g.chunk)
        rank = Signal(g.offset_bits)

        result = self.i.payload
        bit = result.slot[:g.offset_bits]
        chunk = result.slot[g.offset_bits:g.offset_bits + g.chunk_bits]
        nonzero = result.word != 0
        new_mask = mask | (nonzero << bit)

        # Ready from a register (the default): the write bus grants combinationally from all
        # requests, so ``o.ready`` must not reach upstream within the same cycle. The input
        # loader, alone on the bus while it runs, may pass it through for one word a cycle.
        free = ~self.o.valid if self.registered_ready else ~self.o.valid | self.o.ready
        m.d.comb += [self.i.ready.eq(free), self.idle.eq(~self.o.valid)]
        with m.If(self.i.valid & free):
            out = self.o.payload
            m.d.sync += [out.eq(0), out.slot.eq(result.slot), out.word.eq(result.word),
                         out.v.eq(result.v)]
            with m.If(self.last_layer):
                m.d.sync += [out.result_en.eq(1), self.o.valid.eq(1)]
            fiber = ~self.last_layer | self.keep
            with m.If(fiber):
                m.d.sync += [
                    out.word_en.eq(nonzero),
                    out.word_addr.eq(Cat(rank, chunk, self.region)),
                    out.mask_en.eq(result.chunk_last),
                    out.mask_addr.eq(Cat(chunk, self.region)),
                    out.mask.eq(new_mask),
                    self.o.valid.eq(nonzero | result.chunk_last | self.last_layer),
                ]
                with m.If(result.chunk_last):
                    m.d.sync += [mask.eq(0), rank.eq(0)]
                with m.Else():
                    m.d.sync += [mask.eq(new_mask), rank.eq(rank + nonzero)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
