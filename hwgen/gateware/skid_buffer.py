"""A skid buffer: a stream stage whose ``ready`` comes from a register.

A chain of stream stages whose readies are combinational forms one long path from the
last consumer back to the first producer. A skid buffer cuts it: it passes data through in
the same cycle, and when the consumer stalls it catches the one word that was already on
its way into a spare register (the "skid"), so its own ``ready`` can be a register.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class SkidBuffer(wiring.Component):
    """Stream in, stream out, with ``i.ready`` a register.

    Latency: 0 cycles (``o`` is ``i`` while the skid register is empty).
    Throughput: one word per cycle.
    Resources: one word of flip-flops, a word-wide 2:1 multiplexer and one flag.
    """

    def __init__(self, shape):
        if shape is None:
            raise TypeError("SkidBuffer: shape must be a shape-castable, not None")
        self.shape = shape
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.i.payload)
        m.d.comb += [
            self.i.ready.eq(~skid_valid),
            self.o.valid.eq(skid_valid | self.i.valid),
            self.o.payload.eq(Mux(skid_valid, skid, self.i.payload)),
        ]
        with m.If(skid_valid):
            with m.If(self.o.ready):
                m.d.sync += skid_valid.eq(0)
        with m.Elif(self.i.valid & ~self.o.ready):
            m.d.sync += [skid_valid.eq(1), skid.eq(self.i.payload)]
        return m
