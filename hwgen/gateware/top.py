"""The accelerator: TPPEs, input loader, write bus, sequencer, result buffer.

Block diagram (docs/architecture.md has the full description):

    inputs ─> SpikeLoader ─┐                 ┌─> spike buffers of TPPE 0..P-1 (both regions)
                           ├─> WriteArbiter ─┼─> result buffer ─> results
    TPPE 0..P-1 writes ────┘   (write bus)   └─> trace
    LayerSequencer: start/busy/done/cycles; layer, region, mode, go/rewind ─> every TPPE

The component's ports are the core interface (:mod:`.core_interface`, docs/architecture.md).
"""

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .core_interface import CoreSignature
from .geometry import Geometry
from .sequencer import LayerSequencer
from .spike_loader import SpikeLoader
from .tppe import TPPE
from .write_bus import WriteArbiter

TOP_MODULE = "hwgen_core"


class Accelerator(wiring.Component):
    """The generated accelerator for one compiled program (:class:`Program`).

    Latency per inference: about (max over TPPEs of its matched pairs) per layer, plus a
    fixed per-layer overhead for the barrier and pipeline fill/drain (measured by
    benchmarks/fc_cycles.py); input loading takes one cycle per input word, before start.
    """

    def __init__(self, program):
        if not program.config.resolved:
            raise ValueError("Accelerator: the program's configuration is not resolved")
        self.program = program
        self.geometry = g = Geometry.of(program)
        super().__init__(CoreSignature(g.timesteps, g.v_bits, trace=g.trace))

    def elaborate(self, platform):
        m = Module()
        program, g, config = self.program, self.geometry, self.program.config

        m.submodules.sequencer = sequencer = LayerSequencer(
            program.descriptors, program.layouts["layer"], g.layer_bits)
        m.submodules.loader = loader = SpikeLoader(g, program.input_size)
        m.submodules.arbiter = arbiter = WriteArbiter(g, program.tppes + 1)

        wiring.connect(m, wiring.flipped(self.inputs), loader.i)
        # Inputs are refused while an inference runs: region 0 may still be read.
        m.d.comb += [
            loader.i.valid.eq(self.inputs.valid & ~sequencer.busy),
            self.inputs.ready.eq(loader.i.ready & ~sequencer.busy),
            loader.clear.eq(sequencer.begin),
        ]
        wiring.connect(m, loader.o, arbiter.requests[program.tppes])

        idle = []
        for p in range(program.tppes):
            tppe = TPPE(g, program.layouts, program.modes, program.entries[p],
                        program.weights[p], program_depth=config.program_depth,
                        weight_depth=config.weight_depth, lif_steps=config.lif_steps,
                        fifo_depth=config.fifo_depth, join=config.join)
            m.submodules[f"tppe{p}"] = tppe
            m.d.comb += [
                tppe.region.eq(sequencer.region), tppe.mode.eq(sequencer.mode),
                tppe.last_layer.eq(sequencer.last_layer), tppe.rewind.eq(sequencer.rewind),
                tppe.go.eq(sequencer.go),
                tppe.bus.valid.eq(arbiter.bus.valid), tppe.bus.payload.eq(arbiter.bus.payload),
            ]
            wiring.connect(m, tppe.writes, arbiter.requests[p])
            idle.append(tppe.idle)

        m.d.comb += [
            sequencer.start.eq(self.start),
            sequencer.ready.eq(loader.loaded & loader.idle & ~arbiter.pending),
            sequencer.all_idle.eq(Cat(idle).all() & ~arbiter.pending),
            self.busy.eq(sequencer.busy),
            self.done.eq(sequencer.done),
            self.cycles.eq(sequencer.cycles),
        ]

        # Result buffer: the last layer's words and final membranes, by output index.
        m.submodules.results = results = Memory(shape=g.result, depth=program.output_size,
                                                init=[])
        write = results.write_port()
        bus = arbiter.bus.payload
        m.d.comb += [
            write.en.eq(arbiter.bus.valid & bus.result_en),
            write.addr.eq(bus.slot),
            write.data.word.eq(bus.word),
            write.data.v.eq(bus.v),
        ]
        read = results.read_port()
        pointer = Signal(range(program.output_size + 1))
        primed = Signal()
        m.d.sync += primed.eq(sequencer.done)
        take = self.results.valid & self.results.ready
        m.d.comb += [
            read.addr.eq(pointer + take),
            self.results.payload.eq(read.data),
            self.results.valid.eq(sequencer.done & primed & (pointer < program.output_size)),
        ]
        with m.If(take):
            m.d.sync += pointer.eq(pointer + 1)
        with m.If(sequencer.begin):
            m.d.sync += pointer.eq(0)

        m.d.comb += [
            self.trace.valid.eq(sequencer.busy & arbiter.bus.valid & (bus.word_en | bus.result_en)),
            self.trace.payload.layer.eq(sequencer.layer),
            self.trace.payload.slot.eq(bus.slot),
            self.trace.payload.word.eq(bus.word),
        ]
        return m


def to_verilog(program):
    """The Verilog of ``program``'s accelerator: deterministic, no source locations."""
    return verilog.convert(Accelerator(program), name=TOP_MODULE, emit_src=False)
