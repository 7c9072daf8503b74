"""The layer sequencer: runs the layers of an inference one after another.

A layer needs all of its input before it starts (every output neuron reads the whole input
fiber), so the sequencer runs a barrier between layers: it lets every TPPE walk its fiber
program up to the layer's end, waits until all TPPEs are idle and the write bus has
drained (the layer's output fiber is complete), then starts the next layer on the other
half of the spike buffers.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .geometry import struct_of


class LayerSequencer(wiring.Component):
    """Controls one inference.

    Ports: ``start`` (pulse) arms an inference, which begins once ``ready`` (all inputs
    loaded and written); ``all_idle`` every TPPE idle and the write bus empty; outputs the
    current ``layer``, its descriptor (``mode``, ``last_layer``), the input ``region``,
    ``rewind`` / ``go`` pulses for the TPPEs, ``busy``, ``done`` and ``cycles`` (start to
    done). ``begin`` pulses when an inference begins.

    Overhead per layer: 3 cycles between one layer's barrier and the next layer's first
    fetch (read the descriptor, pulse ``go``, let the TPPEs leave their halt).
    """

    def __init__(self, descriptors, layout, layer_bits):
        if not descriptors:
            raise ValueError("LayerSequencer: a program needs at least one layer")
        self.descriptors = list(descriptors)
        self.layout = layout
        super().__init__({
            "start": In(1),
            "ready": In(1),
            "all_idle": In(1),
            "begin": Out(1),
            "layer": Out(layer_bits),
            "region": Out(1),
            "mode": Out(layout["mode"].width),
            "last_layer": Out(1),
            "rewind": Out(1),
            "go": Out(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.descriptors = table = Memory(shape=self.layout.width,
                                                  depth=len(self.descriptors),
                                                  init=self.descriptors)
        read = table.read_port()
        descriptor = Signal(struct_of(self.layout))
        m.d.comb += descriptor.eq(read.data)
        m.d.comb += [read.addr.eq(self.layer), self.region.eq(self.layer[0])]

        armed = Signal()
        with m.If(self.start):
            # done falls at start, not when the inference begins (which waits for the
            # inputs to be written): a host polling done must never see the last one's.
            m.d.sync += [armed.eq(1), self.done.eq(0)]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If((armed | self.start) & self.ready):
                    m.d.comb += [self.begin.eq(1), self.rewind.eq(1)]
                    m.d.sync += [armed.eq(0), self.busy.eq(1), self.done.eq(0),
                                 self.cycles.eq(0), self.layer.eq(0)]
                    m.next = "DESCRIPTOR"
            with m.State("DESCRIPTOR"):
                m.next = "GO"           # the descriptor of `layer` is read this cycle
            with m.State("GO"):
                m.d.sync += [
                    self.mode.eq(descriptor.mode),
                    self.last_layer.eq(descriptor.last),
                ]
                m.d.comb += self.go.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(self.all_idle):
                    with m.If(self.last_layer):
                        m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.layer.eq(self.layer + 1)
                        m.next = "DESCRIPTOR"
        return m
