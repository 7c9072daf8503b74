"""The accelerator: TPPEs, input loader, write bus, sequencer, result buffer.

Block diagram (docs/architecture.md has the full description):

    inputs ─> SpikeLoader ─┐                 ┌─> spike buffers of TPPE 0..P-1 (all regions,
                           ├─> WriteArbiter ─┤   bank b from lane b)
    TPPE 0..P-1 writes ────┘   (write bus,   ├─> result buffer ─> results
                                B lanes)     └─> trace
    LayerSequencer: start/busy/done/cycles; layer, region, mode, go/rewind ─> every TPPE

The component's ports are the core interface (:mod:`.core_interface`, docs/architecture.md).

Each TPPE's fiber program and weights are ROMs here, beside the TPPEs, so that every TPPE
is the same logic: :func:`to_verilog` emits it once, as the module ``hwgen_tppe`` that the
top instantiates P times. Amaranth would otherwise elaborate and emit P copies, and
Verilator compile each of them: at 30 TPPEs that was 150,000 lines of Verilog and over a
minute of building before the first simulated cycle.
"""

from amaranth.back import verilog
from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.compiler.instruction_format import TAG_NEURON, walk
from hwgen.compiler.ir.early_exit import check_rule

from .core_interface import CoreSignature
from .early_exit import ExitCheck
from .geometry import Geometry
from .sequencer import LayerSequencer
from .shared_activations import SharedActivations
from .spike_loader import SpikeLoader
from .tppe import TPPE
from .verilog_output import fold_memory_inits
from .write_bus import WriteArbiter

TOP_MODULE = "hwgen_core"
TPPE_MODULE = "hwgen_tppe"


class Accelerator(wiring.Component):
    """The generated accelerator for one compiled program (:class:`Program`).

    Latency per inference: for each of the T / T_c time chunks and each layer, about the
    most matched pairs any TPPE has in that chunk, plus a fixed per-layer overhead for the
    barrier and pipeline fill/drain (measured by benchmarks/fc_cycles.py); input loading
    takes one cycle per input word (inputs x T / T_c words), before start.

    ``tppe_module``: instantiate the TPPEs as that Verilog module (``Instance``), which the
    caller converts once from :attr:`tppe` (:func:`to_verilog` does); by default they are
    submodules, as the Amaranth simulator needs them.
    """

    def __init__(self, program, *, tppe_module=None):
        if not program.config.resolved:
            raise ValueError("Accelerator: the program's configuration is not resolved")
        self.program = program
        self.geometry = g = Geometry.of(program)
        self.tppe_module = tppe_module
        # Membranes are carried per neuron between time chunks: the most any TPPE has.
        self.membrane_depth = max(1, max(
            (sum(1 for entry in walk(program.layouts, entries, len(program.layers),
                                     program.config.fetch_width)
                 if entry["tag"] == TAG_NEURON)
             for entries in program.entries), default=1))
        # The TPPE the Verilog module is converted from; only built when asked for, as an
        # Elaboratable never elaborated draws a warning.
        self.tppe = self.new_tppe() if tppe_module is not None else None
        super().__init__(CoreSignature(g.lanes, g.v_bits, trace=g.trace))

    def new_tppe(self):
        """A TPPE of this program: the same for every p (its ROMs are the top's)."""
        program, config = self.program, self.program.config
        return TPPE(self.geometry, program.layouts, program.modes,
                    program_depth=config.program_depth, weight_depth=config.weight_depth,
                    membrane_depth=self.membrane_depth, lif_steps=config.lif_steps,
                    fifo_depth=config.fifo_depth, join=config.join,
                    fetch_width=config.fetch_width, lif_buffer=config.lif_buffer)

    def add_tppe(self, m, p, shared=None):
        """TPPE ``p`` and its ROMs in ``m``; its interface. ``shared``: the shared program
        memory's read data (layers run in step), which its program reads above its own
        memory's entries; None: none."""
        if self.tppe_module is None:
            tppe = m.submodules[f"tppe{p}"] = self.new_tppe()
        else:
            tppe = self.tppe.signature.create(path=(f"tppe{p}",))
            ports = {}
            for path, member, value in self.tppe.signature.flatten(tppe):
                direction = "i" if member.flow == In else "o"
                ports[f"{direction}_{'__'.join(map(str, path))}"] = value
            m.submodules[f"tppe{p}"] = Instance(self.tppe_module, i_clk=ClockSignal(),
                                                i_rst=ResetSignal(), **ports)
        template = self.template(tppe)
        base = self.program.shared_base
        m.submodules[f"program{p}"] = program = template.program_rom(
            self.program.own_entries(p), depth=base)
        m.submodules[f"weights{p}"] = weights = template.weight_rom(self.program.weights[p])
        if shared is None:
            wiring.connect(m, tppe.program, program.read_port())
        else:
            # its own entries below the shared ones (in words); the data follows the
            # address of the read it answers, as a block RAM's does
            own, first = program.read_port(), base // self.program.config.fetch_width
            above = Signal(name=f"tppe{p}_reads_shared")
            m.d.comb += [own.addr.eq(tppe.program.addr), own.en.eq(tppe.program.en),
                         tppe.program.data.eq(Mux(above, shared, own.data))]
            with m.If(tppe.program.en):
                m.d.sync += above.eq(tppe.program.addr >= first)
        wiring.connect(m, tppe.weights, weights.read_port())
        return tppe

    def template(self, tppe):
        """The TPPE whose ROM constructors build the memories (all TPPEs' are alike)."""
        return self.tppe if self.tppe_module is not None else tppe

    def add_shared_program(self, m, tppes):
        """The shared program memory (layers run in step), read at TPPE 0's address: in
        such a layer every TPPE's walk moves with the others' (``hold``, from any one's
        ``stalling``), so above its own entries every TPPE reads the same address."""
        entries = self.program.shared_entries()
        m.submodules.shared_program = memory = self.template(tppes[0]).program_rom(
            entries, depth=len(entries))
        read = memory.read_port()
        first = self.program.shared_base // self.program.config.fetch_width
        address = tppes[0].program.addr
        m.d.comb += [read.addr.eq(address - first),
                     read.en.eq(tppes[0].program.en & (address >= first))]
        return read

    def elaborate(self, platform):
        m = Module()
        program, g, config = self.program, self.geometry, self.program.config

        rule = check_rule(config.early_exit)
        m.submodules.sequencer = sequencer = LayerSequencer(
            program.descriptors, program.layouts["layer"], g.layer_bits,
            time_chunks=g.time_chunks, pass_bits=g.pass_bits, lanes=g.lanes,
            early_exit=rule is not None, state_pairs=g.state_pairs, residual=g.residual)
        m.submodules.loader = loader = SpikeLoader(g, program.input_size)
        m.submodules.arbiter = arbiter = WriteArbiter(g, program.tppes)

        wiring.connect(m, wiring.flipped(self.inputs), loader.i)
        # Inputs are refused while an inference runs: the input regions may still be read.
        m.d.comb += [
            loader.i.valid.eq(self.inputs.valid & ~sequencer.busy),
            self.inputs.ready.eq(loader.i.ready & ~sequencer.busy),
            loader.clear.eq(sequencer.begin),
        ]
        # the bus is the loader's between inferences, the TPPEs' during one
        wiring.connect(m, loader.o, arbiter.load)
        m.d.comb += arbiter.loading.eq(~sequencer.busy)

        idle, tppes = [], []
        shared = None
        if program.shared_base is not None:
            # its read port's data, for every TPPE; its address is TPPE 0's, below
            shared = Signal(config.fetch_width * program.layouts["entry"].width,
                            name="shared_program_data")
        for p in range(program.tppes):
            tppe = self.add_tppe(m, p, shared)
            tppes.append(tppe)
            m.d.comb += [
                tppe.region.eq(sequencer.in_region), tppe.out_region.eq(sequencer.out_region),
                tppe.state_region.eq(sequencer.state_region),
                tppe.first_chunk.eq(sequencer.first_chunk),
                tppe.first_sub.eq(sequencer.first_sub), tppe.last_sub.eq(sequencer.last_sub),
                tppe.mode.eq(sequencer.mode), tppe.last_layer.eq(sequencer.last_layer),
                tppe.keep.eq(sequencer.keep),
                tppe.current_write.eq(sequencer.current_write),
                tppe.current_read.eq(sequencer.current_read),
                tppe.operands.eq(sequencer.operands),
                tppe.rewind.eq(sequencer.rewind), tppe.replay.eq(sequencer.replay),
                tppe.go.eq(sequencer.go),
                tppe.bus.valid.eq(arbiter.bus.valid), tppe.bus.payload.eq(arbiter.bus.payload),
            ]
            wiring.connect(m, tppe.writes, arbiter.requests[p])
            idle.append(tppe.idle)
        if g.shared_banks:
            # region 1 of the spike buffers, once for all TPPEs, written by the bus
            m.submodules.shared_activations = activations = SharedActivations(g)
            m.d.comb += [activations.write_valid.eq(arbiter.bus.valid[0]),
                         activations.write.eq(arbiter.bus.payload[0])]
            for tppe, port in zip(tppes, activations.read):
                wiring.connect(m, tppe.activations, port)
        if shared is not None:
            m.d.comb += shared.eq(self.add_shared_program(m, tppes).data)
            # in a layer run in step, a TPPE that may stall next cycle holds every program
            # walk then (registered: the TPPEs' state meets only in this register)
            holding = Signal()
            m.d.sync += holding.eq(Cat(tppe.stalling for tppe in tppes).any()
                                   & sequencer.lockstep)
            m.d.comb += [tppe.hold.eq(holding) for tppe in tppes]

        m.d.comb += [
            # the last layer's results share the result buffer's one write port
            arbiter.single.eq(sequencer.last_layer),
            sequencer.start.eq(self.start),
            sequencer.ready.eq(loader.loaded & loader.idle & ~arbiter.pending),
            sequencer.all_idle.eq(Cat(idle).all() & ~arbiter.pending),
            self.busy.eq(sequencer.busy),
            self.done.eq(sequencer.done),
            self.cycles.eq(sequencer.cycles),
            self.steps.eq(sequencer.steps),
        ]

        # Result buffer: the last layer's words and membranes, by time chunk and output index.
        outputs = program.output_size * g.time_chunks
        m.submodules.results = results = Memory(shape=g.result, depth=outputs, init=[])
        write = results.write_port()
        # The lane carrying a result: in the last layer only one lane writes a cycle.
        bus = arbiter.bus.payload[0]
        if g.write_lanes > 1:
            bus = Signal(g.write_request)
            m.d.comb += bus.eq(0)
            for b in range(g.write_lanes):
                with m.If(arbiter.bus.valid[b]):
                    m.d.comb += bus.eq(arbiter.bus.payload[b])
        # chunk x outputs, advanced at each chunk's rewind: a multiplier here became a DSP.
        # With one chunk it is 0 (a register there cost logic the iCE40 fit cannot spare).
        base = 0
        if g.time_chunks > 1:
            base = Signal(range(outputs))
            with m.If(sequencer.begin):
                m.d.sync += base.eq(0)
            with m.Elif(sequencer.rewind):
                m.d.sync += base.eq(base + program.output_size)
        # a recurrent output layer's sub-passes but the last write results still settling
        result_write = (arbiter.bus.valid != 0) & bus.result_en & sequencer.last_sub
        m.d.comb += [
            write.en.eq(result_write),
            write.addr.eq(base + bus.slot),
            write.data.word.eq(bus.word),
            write.data.v.eq(bus.v),
        ]
        if rule is not None:
            m.submodules.exit_check = check = ExitCheck(program.output_size, g.timesteps,
                                                        g.lanes, rule)
            m.d.comb += [
                check.clear.eq(sequencer.begin),
                check.add.eq(result_write),
                check.slot.eq(bus.slot),
                check.word.eq(bus.word),
                check.check.eq(sequencer.check),
                check.remaining.eq(sequencer.remaining),
                sequencer.checking.eq(check.busy),
                sequencer.exit.eq(check.exit),
            ]
        read = results.read_port()
        pointer = Signal(range(outputs + 1))
        primed = Signal()
        m.d.sync += primed.eq(sequencer.done)
        take = self.results.valid & self.results.ready
        m.d.comb += [
            read.addr.eq(pointer + take),
            self.results.payload.eq(read.data),
            self.results.valid.eq(sequencer.done & primed & (pointer < outputs)),
        ]
        with m.If(take):
            m.d.sync += pointer.eq(pointer + 1)
        with m.If(sequencer.begin):
            m.d.sync += pointer.eq(0)
        if rule is not None:
            self.skip_chunks_not_run(m, read, take, sequencer, base)

        # a recurrent layer's sub-passes but the last write spikes still being settled
        tracing = sequencer.busy & sequencer.last_sub
        lanes = []
        for b, (valid, lane) in enumerate(zip(arbiter.bus.valid, arbiter.bus.payload)):
            traced = self.trace.payload.writes[b]
            m.d.comb += [traced.valid.eq(tracing & valid & (lane.word_en | lane.result_en)),
                         traced.slot.eq(lane.slot), traced.word.eq(lane.word)]
            lanes.append(traced.valid)
        m.d.comb += [self.trace.valid.eq(Cat(lanes).any()),
                     self.trace.payload.layer_pass.eq(sequencer.layer_pass)]
        return m


    def skip_chunks_not_run(self, m, read, take, sequencer, base):
        """After an early exit, the result words of the chunks that did not run read as no
        spikes and the membrane at the exit (the one the last chunk run left), not as
        whatever an earlier inference left there (docs/semantics.md section 8). The read
        walks (chunk, output) with two counters; a chunk past the last one run reads that
        one's word (at ``base``, which the last chunk run left at chunk x outputs), with the
        spikes masked."""
        N, C = self.program.output_size, self.geometry.time_chunks
        chunk, index = Signal(range(C)), Signal(range(N))
        next_chunk, next_index = Signal(range(C)), Signal(range(N))
        wrap = index == N - 1
        m.d.comb += [next_chunk.eq(chunk), next_index.eq(index)]
        with m.If(take):
            m.d.comb += [next_index.eq(Mux(wrap, 0, index + 1)),
                         next_chunk.eq(Mux(wrap, chunk + 1, chunk))]
        m.d.sync += [chunk.eq(next_chunk), index.eq(next_index)]
        with m.If(sequencer.begin):
            m.d.sync += [chunk.eq(0), index.eq(0)]
        ran = sequencer.chunk                   # the last chunk run, once done
        skipped = Signal()                      # aligned with the read port's data
        m.d.sync += skipped.eq(next_chunk > ran)
        with m.If(next_chunk > ran):
            m.d.comb += read.addr.eq(base + next_index)
        with m.If(skipped):
            m.d.comb += self.results.payload.word.eq(0)


def to_verilog(program):
    """The Verilog of ``program``'s accelerator: the top module ``hwgen_core`` and the one
    ``hwgen_tppe`` module it instantiates P times; deterministic, no source locations,
    memories that start uniform initialised by a loop (:mod:`.verilog_output`)."""
    top = Accelerator(program, tppe_module=TPPE_MODULE)
    text = verilog.convert(top, name=TOP_MODULE, emit_src=False)
    text += verilog.convert(top.tppe, name=TPPE_MODULE, emit_src=False)
    return fold_memory_inits(text)
