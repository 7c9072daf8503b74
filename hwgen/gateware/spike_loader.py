"""The input loader: packed input words in, in input order; layer 0's spike fiber out."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .output_compressor import OutputCompressor


class SpikeLoader(wiring.Component):
    """Writes the K input words of one inference into region 0 of the spike buffers.

    The inputs fill chunks in natural order, so this is an :class:`OutputCompressor` fed
    with slot = input index and a chunk end every W inputs and at the last one.

    Ports: ``i`` one packed T-bit word per input neuron; ``clear`` forget the loaded input
    (an inference started); ``loaded`` all K words have been accepted; ``o`` write
    requests; ``idle`` no write pending.
    Throughput: one input word per cycle. Latency: 1 cycle.
    """

    def __init__(self, geometry, inputs):
        if inputs < 1 or inputs > 1 << geometry.slot_bits:
            raise ValueError(f"SpikeLoader: {inputs} inputs do not fit {geometry.slot_bits} "
                             f"slot bits")
        self.geometry = geometry
        self.inputs = inputs
        super().__init__({
            "i": In(stream.Signature(geometry.timesteps)),
            "clear": In(1),
            "loaded": Out(1),
            "o": Out(stream.Signature(geometry.write_request)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        m.submodules.pack = pack = OutputCompressor(g, registered_ready=False)
        count = Signal(range(self.inputs + 1))
        m.d.comb += [
            self.loaded.eq(count == self.inputs),
            pack.region.eq(0),
            pack.last_layer.eq(0),
            pack.i.valid.eq(self.i.valid & ~self.loaded),
            pack.i.payload.word.eq(self.i.payload),
            pack.i.payload.slot.eq(count),
            pack.i.payload.chunk_last.eq((count[:g.offset_bits] == g.chunk - 1)
                                         | (count == self.inputs - 1)),
            self.i.ready.eq(pack.i.ready & ~self.loaded),
            self.idle.eq(pack.idle),
        ]
        wiring.connect(m, wiring.flipped(self.o), pack.o)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += count.eq(count + 1)
        with m.If(self.clear):
            m.d.sync += count.eq(0)
        return m
