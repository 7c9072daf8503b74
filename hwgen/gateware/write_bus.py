"""The write bus: every TPPE's (and the loader's) writes, one per cycle, to every buffer.

Each TPPE reads the layer's spike fiber from its own copy of the spike buffers, so every
write must reach all copies. Writers are far rarer than reads (one per active output
neuron and one per chunk), so a single round-robin arbitrated bus carries them all.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def bus_signature(geometry):
    """A registered broadcast of one write request per cycle (no backpressure)."""
    return wiring.Signature({"valid": Out(1), "payload": Out(geometry.write_request)})


class WriteArbiter(wiring.Component):
    """Round-robin arbiter of ``count`` write-request streams onto one broadcast bus.

    Throughput: one write per cycle in total; a requester waits at most ``count - 1``
    cycles once it asks. Latency: 1 cycle (the bus is registered).
    Resources: a one-hot round-robin pointer and a ``count``-way one-hot payload mux.
    """

    def __init__(self, geometry, count):
        if count < 1:
            raise ValueError(f"WriteArbiter: count {count} must be at least 1")
        self.geometry = geometry
        self.count = count
        super().__init__({
            "requests": In(stream.Signature(geometry.write_request)).array(count),
            "bus": Out(bus_signature(geometry)),
            "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.count
        asking = Signal(n)
        m.d.comb += asking.eq(Cat(r.valid for r in self.requests))
        last = Signal(n, init=1 << (n - 1))   # one-hot: who was granted last
        after_last = Signal(n)
        m.d.comb += after_last.eq(asking & ~((last << 1) - 1))
        grant = Signal(n)
        with m.If(after_last != 0):
            m.d.comb += grant.eq(after_last & -after_last)
        with m.Else():
            m.d.comb += grant.eq(asking & -asking)

        chosen = Signal(self.geometry.write_request)
        m.d.comb += chosen.eq(0)
        for i, request in enumerate(self.requests):
            m.d.comb += request.ready.eq(grant[i])
            with m.If(grant[i]):
                m.d.comb += chosen.eq(request.payload)
        m.d.sync += [self.bus.valid.eq(asking != 0), self.bus.payload.eq(chosen)]
        with m.If(asking != 0):
            m.d.sync += last.eq(grant)
        m.d.comb += self.pending.eq((asking != 0) | self.bus.valid)
        return m
