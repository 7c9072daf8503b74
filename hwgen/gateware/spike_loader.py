"""The input loader: packed input words in, chunk-major; layer 0's spike fibers out."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .output_compressor import OutputCompressor
from .skid_buffer import SkidBuffer


class SpikeLoader(wiring.Component):
    """Writes the input words of one inference into the spike buffers' input regions.

    The words arrive chunk-major (every input neuron of time chunk 0, then of chunk 1, ...);
    chunk c goes to region 0 when there is one chunk, else to region 2 + c
    (:class:`~.sequencer.LayerSequencer` reads it there). Within a chunk the inputs fill
    fiber chunks in natural order, so this is an :class:`OutputCompressor` fed with
    slot = input index and a fiber-chunk end every W inputs and at the last one.

    Ports: ``i`` one packed T_c-bit word per input neuron and time chunk; ``clear`` forget
    the loaded input (an inference started); ``loaded`` all words have been accepted; ``o``
    write requests; ``idle`` no write pending.
    Throughput: one input word per cycle. Latency: 1 cycle.
    ``i.ready`` comes from registers: a skid buffer (T_c bits) takes the words, so the write
    bus's grant, which decides whether the packer moves, does not reach the host interface
    feeding ``i`` (out of context on iCE40, that loop through the harness was critical).
    """

    def __init__(self, geometry, inputs):
        if inputs < 1 or inputs > 1 << geometry.slot_bits:
            raise ValueError(f"SpikeLoader: {inputs} inputs do not fit {geometry.slot_bits} "
                             f"slot bits")
        self.geometry = geometry
        self.inputs = inputs
        super().__init__({
            "i": In(stream.Signature(geometry.lanes)),
            "clear": In(1),
            "loaded": Out(1),
            "o": Out(stream.Signature(geometry.write_request)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        C = g.time_chunks
        m.submodules.pack = pack = OutputCompressor(g, registered_ready=False)
        m.submodules.skid = skid = SkidBuffer(g.lanes)
        count = Signal(range(self.inputs))
        chunk = Signal(range(C))
        loaded = Signal()
        m.d.comb += [
            self.loaded.eq(loaded),
            pack.region.eq(0 if C == 1 else 2 + chunk),
            pack.last_layer.eq(0),
            skid.i.valid.eq(self.i.valid & ~loaded),
            skid.i.payload.eq(self.i.payload),
            self.i.ready.eq(skid.i.ready & ~loaded),
            pack.i.valid.eq(skid.o.valid),
            skid.o.ready.eq(pack.i.ready),
            pack.i.payload.word.eq(skid.o.payload),
            pack.i.payload.slot.eq(count),
            pack.i.payload.chunk_last.eq((count[:g.offset_bits] == g.chunk - 1)
                                         | (count == self.inputs - 1)),
            self.idle.eq(pack.idle & skid.i.ready),        # nothing caught in the skid
        ]
        wiring.connect(m, wiring.flipped(self.o), pack.o)
        with m.If(pack.i.valid & pack.i.ready):
            with m.If(count == self.inputs - 1):
                m.d.sync += count.eq(0)
                with m.If(chunk == C - 1):
                    m.d.sync += loaded.eq(1)
                with m.Else():
                    m.d.sync += chunk.eq(chunk + 1)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(self.clear):
            m.d.sync += [count.eq(0), chunk.eq(0), loaded.eq(0)]
        return m
