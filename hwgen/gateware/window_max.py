"""The maximum over a pooling window of currents, between the accumulate and LIF stages."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .geometry import Geometry


class WindowMax(wiring.Component):
    """Max pooling of currents before the neurons (docs/semantics.md 3a, ``max_pool2d``).

    A pooled neuron arrives as the rows of its window, one after another, each a neuron's
    currents (``sums``, one per step) and header; every row but the last has the header's
    ``partial`` bit set. A partial row is absorbed into a running maximum, step by step;
    the last row leaves with the maximum of all of them (its own header: threshold, slot).
    A row without ``partial`` and no partial row before it passes unchanged, so layers
    without pooling run through as before. Each row's bias is already in its sums, so the
    maximum is taken of whole currents, exactly as the reference does.

    Latency 0 (combinational from ``i`` to ``o``); one row per cycle; resources: T_c
    registers of ``acc_bits`` and T_c comparators and multiplexers.
    """

    def __init__(self, geometry):
        if not isinstance(geometry, Geometry):
            raise TypeError(f"WindowMax: geometry must be a Geometry, not {geometry!r}")
        if not geometry.max_pool:
            raise ValueError("WindowMax: the geometry has no max pooling (max_pool is false): "
                             "its headers carry no partial bit")
        self.geometry = geometry
        super().__init__({
            "i": In(stream.Signature(geometry.neuron_currents)),
            "o": Out(stream.Signature(geometry.neuron_currents)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        running = [Signal(signed(g.acc_bits), name=f"running_{t}") for t in range(g.lanes)]
        have = Signal()                 # a partial row of this window has been absorbed
        row = self.i.payload
        pooled = [Mux(have & (running[t] > row.sums[t]), running[t], row.sums[t])
                  for t in range(g.lanes)]
        partial = row.header.partial
        m.d.comb += [
            self.o.valid.eq(self.i.valid & ~partial),
            self.o.payload.header.eq(row.header),
            self.i.ready.eq(partial | self.o.ready),
            self.idle.eq(~have),
        ]
        m.d.comb += [self.o.payload.sums[t].eq(pooled[t]) for t in range(g.lanes)]
        with m.If(self.i.valid & partial):
            m.d.sync += [running[t].eq(pooled[t]) for t in range(g.lanes)]
            m.d.sync += have.eq(1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += have.eq(0)
        return m
