"""The write bus: every TPPE's (and the loader's) writes to every buffer, B a cycle.

Each TPPE reads the layer's spike fiber from its own copy of the spike buffers, so every
write must reach all copies. Writes are far rarer than reads (one per active output
neuron and one per chunk), but at many TPPEs a layer whose outputs spike densely is bound
by them. The bus therefore has ``write_lanes`` B lanes: the spike buffers are banked by
chunk index (chunk mod B, :meth:`~.geometry.Geometry.write_bank`), lane b carries only
writes to bank b, and each lane is a round-robin arbiter of its own.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


def bus_signature(geometry):
    """A registered broadcast of up to one write request per lane and cycle (no
    backpressure): ``valid`` bit b and ``payload[b]`` are lane b's, a write to bank b."""
    B = geometry.write_lanes
    return wiring.Signature({"valid": Out(B),
                             "payload": Out(data.ArrayLayout(geometry.write_request, B))})


class WriteArbiter(wiring.Component):
    """Round-robin arbiter of ``count`` write-request streams onto the ``write_lanes`` lanes
    of the broadcast bus.

    Lane b grants, round robin, one of the requests whose bank is b. With ``single`` high
    (the last layer, whose results share one result-buffer port) only the lowest lane with
    a request grants.

    ``load``, the input loader's stream, is not in the round robin: the bus is its own
    while ``loading`` is high (its ``ready`` is then ``loading`` itself) and the
    ``requests``' otherwise, so neither side's grant depends on the other side's requests.
    (The loader writes only between inferences and the TPPEs only during one; with the
    loader in the round robin, its ready ended a path from every TPPE's request through the
    grant's carry chain, the iCEBreaker's worst.)

    Throughput: one write per lane and cycle; a requester waits at most ``count - 1`` grants
    of its lane once it asks (and for ``loading`` to fall). Latency: 1 cycle (the bus is
    registered).
    Resources: per lane a one-hot round-robin pointer and a ``count + 1``-way payload
    multiplexer.
    """

    def __init__(self, geometry, count):
        if count < 1:
            raise ValueError(f"WriteArbiter: count {count} must be at least 1")
        self.geometry = geometry
        self.count = count
        super().__init__({
            "requests": In(stream.Signature(geometry.write_request)).array(count),
            "load": In(stream.Signature(geometry.write_request)),
            "loading": In(1),
            "single": In(1),
            "bus": Out(bus_signature(geometry)),
            "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g, n, B = self.geometry, self.count, self.geometry.write_lanes
        valid = Cat(r.valid for r in self.requests)
        # who asks on each lane: the requests of its bank, while the bus is theirs
        asking = [Signal(n, name=f"asking_{b}") for b in range(B)]
        for b in range(B):
            ours = valid if B == 1 else Cat(g.write_bank(r.payload) == b
                                            for r in self.requests)
            m.d.comb += asking[b].eq(Mux(self.loading, 0, valid & ours))
        m.d.comb += self.load.ready.eq(self.loading)
        # single: the lowest lane with a request, alone
        enabled = [Signal(name=f"enabled_{b}") for b in range(B)]
        for b in range(B):
            lower = Cat(asking[k] != 0 for k in range(b))
            m.d.comb += enabled[b].eq(~self.single | (lower == 0) if b else 1)

        granted = []
        for b in range(B):
            grant = self._lane(m, b, Signal(n, name=f"eligible_{b}"), asking[b], enabled[b])
            granted.append(grant)
        for i, request in enumerate(self.requests):
            m.d.comb += request.ready.eq(Cat(grant[i] for grant in granted).any())
        m.d.comb += self.pending.eq((valid != 0) | self.load.valid | (self.bus.valid != 0))
        return m

    def _lane(self, m, b, eligible, asking, enabled):
        """Lane b's round-robin grant among ``asking``, when ``enabled``; its bus register."""
        n = self.count
        m.d.comb += eligible.eq(Cat(asking[i] & enabled for i in range(n)))
        last = Signal(n, init=1 << (n - 1), name=f"last_{b}")  # one-hot: granted last
        after_last = Signal(n, name=f"after_last_{b}")
        m.d.comb += after_last.eq(eligible & ~((last << 1) - 1))
        grant = Signal(n, name=f"grant_{b}")
        with m.If(after_last != 0):
            m.d.comb += grant.eq(after_last & -after_last)
        with m.Else():
            m.d.comb += grant.eq(eligible & -eligible)

        chosen = Signal(self.geometry.write_request, name=f"chosen_{b}")
        m.d.comb += chosen.eq(0)
        for i, request in enumerate(self.requests):
            with m.If(grant[i]):
                m.d.comb += chosen.eq(request.payload)
        load = self.load.valid & self.loading
        if self.geometry.write_lanes > 1:
            load &= self.geometry.write_bank(self.load.payload) == b
        m.d.sync += [self.bus.valid[b].eq((eligible != 0) | load),
                     self.bus.payload[b].eq(Mux(self.loading, self.load.payload, chosen))]
        with m.If(eligible != 0):
            m.d.sync += last.eq(grant)
        with m.If(self.loading):
            # every inference starts its round robin from the same state, so its cycles do
            # not depend on the one before (as when the loader's grant left it there)
            m.d.sync += last.eq(last.init)
        return grant
