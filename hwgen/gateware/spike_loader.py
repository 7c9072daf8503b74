"""The input loader: packed input words in, chunk-major; layer 0's spike fibers out."""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .output_compressor import OutputCompressor


class SpikeLoader(wiring.Component):
    """Writes the input words of one inference into the spike buffers' input regions.

    The words arrive chunk-major (every input neuron of time chunk 0, then of chunk 1, ...);
    chunk c goes to region 0 when there is one chunk, else to region 2 + c
    (:class:`~.sequencer.LayerSequencer` reads it there). Within a chunk the inputs fill
    fiber chunks in natural order, so this is an :class:`OutputCompressor` fed with
    slot = input index and a fiber-chunk end every W inputs and at the last one.

    Ports: ``i`` one packed T_c-bit word per input neuron and time chunk; ``clear`` forget
    the loaded input (an inference started); ``loaded`` all words have been accepted (and
    ``i`` takes no more); ``o`` write requests; ``idle`` no write pending (with ``loaded``:
    every word written).
    Throughput: one input word per cycle. Latency: 2 cycles.
    The words pass through a 3-deep buffered FIFO (3 x T_c bits of flip-flops): ``i.ready``
    comes from its registers, so whether the packer moves does not reach the host
    interface feeding ``i`` (out of context on iCE40, that loop through the harness was
    critical); and the packer starts from its registered output, not from a skid buffer's
    multiplexer (on the iCEBreaker that path, the skid's flag through the multiplexer
    into the packed write, was critical). Three entries keep one word a cycle.
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
        m.submodules.words = words = fifo.SyncFIFOBuffered(width=g.lanes, depth=3)
        count = Signal(range(self.inputs))
        chunk = Signal(range(C))
        loaded = Signal()
        m.d.comb += [
            self.loaded.eq(loaded),
            pack.region.eq(0 if C == 1 else 2 + chunk),
            pack.last_layer.eq(0),
            words.w_en.eq(self.i.valid & ~loaded),
            words.w_data.eq(self.i.payload),
            self.i.ready.eq(words.w_rdy & ~loaded),
            pack.i.valid.eq(words.r_rdy),
            words.r_en.eq(pack.i.ready),
            pack.i.payload.word.eq(words.r_data),
            pack.i.payload.slot.eq(count),
            pack.i.payload.chunk_last.eq((count[:g.offset_bits] == g.chunk - 1)
                                         | (count == self.inputs - 1)),
            self.idle.eq(pack.idle & (words.level == 0)),
        ]
        wiring.connect(m, wiring.flipped(self.o), pack.o)
        with m.If(pack.i.valid & pack.i.ready):
            with m.If(count == self.inputs - 1):
                m.d.sync += count.eq(0)
                with m.If(chunk != C - 1):
                    m.d.sync += chunk.eq(chunk + 1)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        # ``loaded`` counts the words as they enter the FIFO, so that no more than an
        # inference's words are ever taken; ``idle`` says when they are all written.
        total = self.inputs * C
        received = Signal(range(total))
        last = Signal(init=total == 1)          # received == total - 1, as a register
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [received.eq(received + 1),
                         last.eq(received == total - 2 if total >= 2 else 0)]
            with m.If(last):
                m.d.sync += loaded.eq(1)
        with m.If(self.clear):
            m.d.sync += [count.eq(0), chunk.eq(0), loaded.eq(0), received.eq(0),
                         last.eq(total == 1)]
        return m
