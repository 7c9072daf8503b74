"""The layer sequencer: runs the layers of an inference one after another.

A layer needs all of its input before it starts (every output neuron reads the whole input
fiber), so the sequencer runs a barrier between layers: it lets every TPPE walk its fiber
program up to the layer's end, waits until all TPPEs are idle and the write bus has
drained (the layer's output fiber is complete), then starts the next layer on the other
half of the spike buffers. When T is processed in time chunks of T_c steps, it runs every
layer for chunk 0, then every layer for chunk 1, and so on: the membranes wait in the
TPPEs' membrane memories between chunks, so a chunk's outputs (and a decision taken on
them) are complete before the next chunk starts.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .geometry import struct_of


class LayerSequencer(wiring.Component):
    """Controls one inference: T / T_c passes over the layers, one per time chunk.

    Ports: ``start`` (pulse) arms an inference, which begins the cycle after ``ready`` (all
    inputs loaded and written; registered, as ``all_idle`` is); ``all_idle`` every TPPE
    idle and the write bus empty; outputs the current ``layer``, time ``chunk`` and
    ``layer_pass`` (chunk x layers + layer), the layer's descriptor (``mode``,
    ``last_layer``, and with kept membrane shortcuts ``current_write`` / ``current_read``,
    with products by kept currents ``operands``, with layers run in step ``lockstep``),
    the spike-buffer regions it reads
    (``in_region``) and writes (``out_region``), ``first_chunk``, ``rewind`` / ``go``
    pulses for the TPPEs, ``busy``, ``done``, ``cycles`` (start to done) and ``steps`` (the
    steps the last inference ran). ``begin`` pulses when an inference begins. With
    ``early_exit``, after every chunk but the last it pulses ``check`` with ``remaining``
    (steps after this chunk) and waits while ``checking``; ``exit`` then ends the
    inference.

    Regions: with one chunk, layer l reads region l mod 2 and writes the other (layer 0
    reads the input in region 0). With several, the input of chunk c waits in region 2 + c
    and layer l writes region l mod 2, so each pass finds its input where the loader put it.
    The k-th recurrent layer (descriptor ``state`` = k) has the pair of regions after
    those, R + 2(k - 1) + {0, 1}. It runs T_c sub-passes per chunk (``first_sub``,
    ``last_sub``; ``replay`` returns the TPPEs to the layer's first program entry between
    them), each settling one more step (docs/architecture.md, "Recurrent layers"): its
    n-th sub-pass of the inference (n = chunk x T_c + sub) writes its spikes into the
    region of parity n and reads its own spikes of sub-pass n - 1 (``state_region``) from
    the other; the layer after it (``reads_state`` = k) reads its input from the region of
    the chunk's last sub-pass. With T_c = 1 a sub-pass is a step. With ``residual``, the
    pairs are instead those of layers whose spikes a later layer reads besides its input
    (residual connections, attention branches): such a layer writes into its pair as above,
    the layer after it reads them there, and a later one reads them in the same pass (T_c
    steps at once; a model has either recurrent layers or kept ones): ``state_region`` is
    then pair 1's region of this chunk, and a fiber chunk names the pair it reads
    (:meth:`~.geometry.Geometry.source_region`).

    Overhead per layer and chunk: 4 cycles from the last TPPE going idle to the next
    layer's first fetch (register ``all_idle``, read the descriptor, pulse ``go``, let the
    TPPEs leave their halt); 3 before a recurrent layer's further sub-passes (``replay``,
    then ``go``).
    """

    def __init__(self, descriptors, layout, layer_bits, time_chunks=1, pass_bits=None, *,
                 lanes=1, early_exit=False, state_pairs=0, residual=False):
        if not descriptors:
            raise ValueError("LayerSequencer: a program needs at least one layer")
        if time_chunks < 1:
            raise ValueError(f"LayerSequencer: time_chunks {time_chunks} must be at least 1")
        self.descriptors = list(descriptors)
        self.layout = layout
        self.time_chunks = time_chunks
        passes = time_chunks * len(self.descriptors)
        pass_bits = pass_bits or max(1, (passes - 1).bit_length())
        if passes > 1 << pass_bits:
            raise ValueError(f"LayerSequencer: {passes} passes do not fit {pass_bits} bits")
        if state_pairs and "state" not in layout.offsets:
            raise ValueError("LayerSequencer: region pairs (state_pairs) need the "
                             "descriptors' state fields")
        if residual and not state_pairs:
            raise ValueError("LayerSequencer: residual connections need region pairs "
                             "(state_pairs)")
        self.state_pairs = state_pairs
        self.residual = residual
        self.input_regions_end = 2 if time_chunks == 1 else 2 + time_chunks
        regions = self.input_regions_end + 2 * state_pairs
        if early_exit and time_chunks < 2:
            raise ValueError("LayerSequencer: an early exit needs at least two time chunks")
        self.lanes = lanes
        # A recurrent layer's sub-passes per time chunk (one step settled by each)
        self.sub_passes = lanes if state_pairs and not residual else 1
        self.early_exit = early_exit
        timesteps = lanes * time_chunks
        super().__init__({
            "start": In(1),
            "ready": In(1),
            "all_idle": In(1),
            "begin": Out(1),
            "layer": Out(layer_bits),
            "chunk": Out(range(time_chunks)),
            "layer_pass": Out(pass_bits),
            "first_chunk": Out(1),
            # a recurrent layer's sub-pass: the first of its chunk, the last (every pass of
            # another layer is both); ``replay`` sends the TPPEs back to the layer's start
            "first_sub": Out(1),
            "last_sub": Out(1),
            "replay": Out(1),
            "in_region": Out(range(regions)),
            "out_region": Out(range(regions)),
            "state_region": Out(range(regions)),
            "mode": Out(layout["mode"].width),
            "last_layer": Out(1),
            "keep": Out(1),             # the layer has a region pair of its own
            # kept-current buffers the layer writes its currents into and adds from
            # (1-based; 0: none), with membrane shortcuts kept (descriptor fields)
            "current_write": Out(self._field_width(layout, "current_write")),
            "current_read": Out(self._field_width(layout, "current_read")),
            # the layer's pairs multiply by the kept currents of buffer current_read
            # (Q (K^T V)), with any such layer (descriptor field)
            "operands": Out(1),
            # the layer runs in step: the TPPEs' program walks stop together (mapping
            # "tiles"), with any such layer (descriptor field)
            "lockstep": Out(1),
            "rewind": Out(1),
            "go": Out(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(32),
            "steps": Out(range(timesteps + 1)),
            # the early-exit check (:class:`~.early_exit.ExitCheck`)
            "check": Out(1),
            "remaining": Out(range(timesteps + 1)),
            "checking": In(1),
            "exit": In(1),
        })

    @staticmethod
    def _field_width(layout, name):
        return layout[name].width if name in layout.offsets else 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.descriptors = table = Memory(shape=self.layout.width,
                                                  depth=len(self.descriptors),
                                                  init=self.descriptors)
        read = table.read_port()
        descriptor = Signal(struct_of(self.layout))
        m.d.comb += descriptor.eq(read.data)
        m.d.comb += read.addr.eq(self.layer)

        C = self.time_chunks
        single = int(C == 1)
        parity = self.layer[0] ^ single            # the region layer `layer` writes
        input_region = 0 if C == 1 else 2 + self.chunk
        previous = Mux(self.layer == 0, input_region, ~parity & 1)
        m.d.comb += self.first_chunk.eq(self.chunk == 0)
        S = self.sub_passes
        sub = Signal(range(S))
        recurrent = Signal()            # the layer running has sub-passes
        m.d.comb += [self.first_sub.eq(sub == 0),
                     self.last_sub.eq(~recurrent | (sub == S - 1))]
        if self.state_pairs:
            # latched with the mode: valid from the layer's first RUN cycle, before any read
            state = Signal.like(descriptor.state)
            reads_state = Signal.like(descriptor.reads_state)
            with m.If(self.go):
                m.d.sync += [state.eq(descriptor.state),
                             reads_state.eq(descriptor.reads_state)]
            m.d.comb += self.keep.eq(state != 0)
            if S > 1:
                m.d.comb += recurrent.eq(state != 0)

            def pair(k, p):
                return self.input_regions_end - 2 + Cat(p, k)

            if self.residual:
                step = final = self.chunk[0] if C > 1 else 0
            else:
                # A recurrent layer's n-th sub-pass of the inference (n = chunk x T_c +
                # sub) writes the region of parity n and reads its last one's in the other;
                # the layer after it reads the chunk's last sub-pass's.
                base = self.chunk[0] if C > 1 and S % 2 else 0
                step = base ^ sub[0] if S > 1 else base
                final = base ^ ((S - 1) % 2)
            m.d.comb += [
                self.out_region.eq(Mux(state != 0, pair(state, step), parity)),
                self.in_region.eq(Mux(reads_state != 0, pair(reads_state, final), previous)),
            ]
            if self.residual:
                # kept layers' spikes of this very chunk, written earlier in this pass
                m.d.comb += self.state_region.eq(self.input_regions_end + step)
            else:
                m.d.comb += self.state_region.eq(pair(state, ~step & 1))
        else:
            m.d.comb += [self.out_region.eq(parity), self.in_region.eq(previous)]

        # steps still to run after the current chunk, for the exit check
        m.d.comb += self.remaining.eq(self.lanes * (C - 1 - self.chunk))

        def finish():
            m.d.sync += [self.busy.eq(0), self.done.eq(1),
                         self.steps.eq(self.lanes * (self.chunk + 1))]
            m.next = "IDLE"

        def next_chunk():
            # every program walks from its start again
            m.d.comb += self.rewind.eq(1)
            m.d.sync += [self.layer.eq(0), self.chunk.eq(self.chunk + 1)]
            m.next = "DESCRIPTOR"

        # The barrier sees ``all_idle`` a cycle late, from a register: the TPPEs' idle
        # signals and the write arbiter's pending were the iCE40's critical path into this
        # FSM. Idle is final once reached (a halted TPPE stays halted until ``go``), so a
        # cycle-old view is safe; the register reads 0 in a layer's first RUN cycle, where
        # the TPPEs leaving their halt are not idle any more but were in the GO cycle.
        finished = Signal()
        m.d.sync += finished.eq(self.all_idle & ~self.go)
        # ``ready`` likewise (it ends in the write arbiter's pending too): it only rises
        # once the input is loaded and written, and falls only when an inference begins.
        loaded = Signal()
        m.d.sync += loaded.eq(self.ready & ~self.begin)

        armed = Signal()
        with m.If(self.start):
            # done falls at start, not when the inference begins (which waits for the
            # inputs to be written): a host polling done must never see the last one's.
            m.d.sync += [armed.eq(1), self.done.eq(0)]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        with m.FSM():
            with m.State("IDLE"):
                # ``start`` begins an inference through ``armed``, a cycle later: the
                # host interface's start register then meets only flip-flops here (on
                # the iCEBreaker, start -> begin -> the loader's clear was the worst path)
                with m.If(armed & loaded):
                    m.d.comb += [self.begin.eq(1), self.rewind.eq(1)]
                    m.d.sync += [armed.eq(0), self.busy.eq(1), self.done.eq(0),
                                 self.cycles.eq(0), self.layer.eq(0), self.chunk.eq(0),
                                 self.layer_pass.eq(0)]
                    m.next = "DESCRIPTOR"
            with m.State("DESCRIPTOR"):
                m.next = "GO"           # the descriptor of `layer` is read this cycle
            with m.State("GO"):
                m.d.sync += [
                    self.mode.eq(descriptor.mode),
                    self.last_layer.eq(descriptor.last),
                ]
                if "current_write" in self.layout.offsets:
                    m.d.sync += [self.current_write.eq(descriptor.current_write),
                                 self.current_read.eq(descriptor.current_read)]
                if "operands" in self.layout.offsets:
                    m.d.sync += self.operands.eq(descriptor.operands)
                if "lockstep" in self.layout.offsets:
                    m.d.sync += self.lockstep.eq(descriptor.lockstep)
                m.d.comb += self.go.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(finished & ~self.last_sub):
                    # the recurrent layer again, one more step settled
                    m.d.comb += self.replay.eq(1)
                    m.d.sync += sub.eq(sub + 1)
                    m.next = "GO"
                with m.Elif(finished):
                    m.d.sync += [self.layer_pass.eq(self.layer_pass + 1), sub.eq(0)]
                    with m.If(self.last_layer & (self.chunk == C - 1)):
                        finish()
                    with m.Elif(self.last_layer):
                        if self.early_exit:
                            m.d.comb += self.check.eq(1)
                            m.next = "EXIT_CHECK"
                        else:
                            next_chunk()
                    with m.Else():
                        m.d.sync += self.layer.eq(self.layer + 1)
                        m.next = "DESCRIPTOR"
            with m.State("EXIT_CHECK"):
                with m.If(~self.checking):
                    with m.If(self.exit):
                        finish()
                    with m.Else():
                        next_chunk()
        return m
