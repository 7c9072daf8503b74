"""The temporal-parallel processing element (TPPE).

A TPPE computes its share of a layer's output neurons, one neuron after another, with all
T time steps in parallel:

    fiber program --FiberFetch--> chunk matches --InnerJoin--> matched pairs
        --> read the spike word and the weight (one of each per cycle)
        --> T accumulators: acc[t] += weight if word bit t      (all t at once)
        --> at the neuron's end: LIFUnit over t --> OutputCompressor --> write requests

It reads its fiber program and weights through two read ports (the ROMs, initialised from
the compiled model, are the accelerator's: every TPPE is then the same logic, emitted once
as one Verilog module that the top instantiates P times) and owns its copy of the spike
buffers (a packed-word memory and a mask memory, each in ``write_lanes`` banks), which the
write bus fills: one region holds this layer's input while another receives its output.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.utils import ceil_log2
from amaranth.lib.wiring import In, Out

from hwgen.compiler.hardware_config import JOIN_VARIANTS

from .banked_memory import BankedMemory
from .fiber_fetch import FiberFetch, lockstep_ports, shared_ports
from .wide_fiber_fetch import WideFiberFetch, program_groups
from .inner_join import InnerJoin
from .laggy_accumulator import LaggyAccumulator
from .laggy_join import LaggyJoin, spike_pair, weight_pair
from .lif import LIFUnit
from .output_compressor import OutputCompressor
from .skid_buffer import SkidBuffer
from .window_max import WindowMax
from .write_bus import bus_signature


class TPPE(wiring.Component):
    """One TPPE of a compiled program.

    Ports: ``region`` this layer's input region, ``out_region`` its output's,
    ``state_region`` a recurrent layer's own spikes of the last step;
    ``first_chunk`` the pass is the first time chunk (membranes start at 0);
    ``first_sub`` / ``last_sub`` a recurrent layer's first and last sub-pass of the chunk
    (only the last one stores the membranes; both are high for any other layer);
    ``mode`` / ``last_layer`` from the layer descriptor, ``keep`` the layer has a region
    pair of its own (a recurrent output layer writes its spikes there too);
    ``current_write`` / ``current_read`` the kept-current buffers the layer writes its
    currents into and adds from (:meth:`kept_currents`; 1-based, 0: none), ``operands``
    the layer's pairs multiply by buffer ``current_read``'s words instead of weights (Q (K^T
    V), :meth:`_accumulate_dual`);
    ``rewind`` / ``replay`` / ``go`` from the sequencer; ``bus`` the write bus into this
    TPPE's spike buffers (lane b into bank b); ``writes`` this TPPE's write requests;
    ``halted`` reached the layer's end in its program; ``idle`` halted and nothing left in
    flight; with layers run in step (``geometry.lockstep``), ``stalling`` its program walk
    may have to stop next cycle and ``hold`` stop it (:class:`~.fiber_fetch.FiberFetch`);
    ``program`` and ``weights`` read ports of its fiber-program
    ROM (:func:`program_rom`) and weight ROM (:func:`weight_rom`), read one cycle after
    the address, as a block RAM is; with a shared activation memory
    (``geometry.shared_banks``), ``activations``, its read port of region 1 (a chunk's mask
    and words, :class:`~.shared_activations.SharedActivations`): this TPPE then holds
    region 0 only, and a layer reading region 1 takes each pair's word from its match.

    Nothing in it depends on which TPPE it is, only on the geometry and the configuration:
    ``membrane_depth`` is the most neurons any TPPE of the program has (their membranes
    are carried between time chunks).

    ``join`` selects the inner join: ``"dual"`` (:class:`InnerJoin`, both prefix popcounts
    at once, T_c accumulators gated by the spike word) or ``"laggy"`` (LoAS's:
    :class:`LaggyJoin` and :class:`LaggyAccumulator`: the weight side at one pair per cycle
    into a pseudo-accumulator, the spike side walked one spike-mask bit per cycle into T_c
    correction accumulators; both sides read their memory through the same registered
    two-stage read).

    ``fetch_width`` K: program entries fetched per cycle; with K > 1 the program memory is
    K entries wide, the spike-mask memory has K copies written together, and
    :class:`WideFiberFetch` replaces :class:`FiberFetch`.

    ``lif_buffer`` 1: a finished neuron's currents wait for the LIF stage in a
    :class:`SkidBuffer` of one neuron instead of in the accumulators, which then take the
    next neuron at once.

    Throughput: one matched pair per cycle (laggy: the slower of that and the walker's one
    set spike-mask bit per cycle), overlapped with the LIF evaluation of the previous
    neuron (T_c / lif_steps cycles) and with fetching the next chunks; a finished neuron
    waits in the accumulators until the LIF stage takes it (with ``lif_buffer``, in the
    buffer: only a neuron finishing while the buffer is full waits in the accumulators).
    Resources: T_c accumulators of acc_bits + 1 (with ``lif_buffer``, a neuron's currents
    and header again, and a 2:1 multiplexer as wide; laggy: also the pseudo-accumulator and
    three FIFOs of ``fifo_depth``, see :class:`LaggyJoin`, :class:`LaggyAccumulator`), the
    inner join, the LIF unit, and memories: spike words (regions x spike_depth x T_c),
    spike masks (regions x spike_depth / W x W), each in ``write_lanes`` banks of 1/B the
    depth with a B-way read multiplexer (:class:`BankedMemory`), with kept membrane
    shortcuts or products by kept currents the kept-current memory (:meth:`kept_currents`;
    with products a second read port and a 2:1 multiplexer per accumulator lane), and
    with several time
    chunks a membrane memory (``membrane_depth`` words of v_bits + 1, + i_bits with current-based neurons:
    read as a neuron enters the LIF stage, written as it leaves; a pass reads and writes
    each word once, in program order, so the two never meet). Its ROMs, outside it, are
    program_depth x entry width and weight_depth x weight_bits.
    """

    def __init__(self, geometry, layouts, modes, *, program_depth, weight_depth,
                 membrane_depth=1, lif_steps=1, fifo_depth=4, join="dual", fetch_width=1,
                 lif_buffer=0):
        if join not in JOIN_VARIANTS:
            raise ValueError(f"TPPE: join {join!r} must be one of {', '.join(JOIN_VARIANTS)}")
        if geometry.shared_banks and (join != "dual" or fetch_width != 1):
            raise ValueError("TPPE: a shared activation memory needs the dual join and "
                             "fetch_width 1")
        if join == "laggy" and geometry.operands:
            raise ValueError("TPPE: the laggy join cannot multiply by kept currents "
                             "(geometry.operands); use the dual join")
        if membrane_depth < 1:
            raise ValueError(f"TPPE: membrane_depth {membrane_depth} must be at least 1")
        if lif_buffer not in (0, 1):
            raise ValueError(f"TPPE: lif_buffer {lif_buffer!r} must be 0 or 1")
        self.join = join
        self.fetch_width = fetch_width
        self.lif_buffer = lif_buffer
        self.geometry = geometry
        self.layouts = layouts
        self.modes = list(modes)
        self.program_depth = program_depth
        self.weight_depth = weight_depth
        self.membrane_depth = membrane_depth
        self.lif_steps = lif_steps
        self.fifo_depth = fifo_depth
        program_shape, program_words = self._program_memory()
        super().__init__({
            "program": In(ReadPort.Signature(addr_width=ceil_log2(program_words),
                                             shape=program_shape)),
            "weights": In(ReadPort.Signature(addr_width=ceil_log2(weight_depth),
                                             shape=signed(geometry.weight_bits))),
            "region": In(range(geometry.regions)),
            "out_region": In(range(geometry.regions)),
            "state_region": In(range(geometry.regions)),
            "first_chunk": In(1),
            "first_sub": In(1),
            "last_sub": In(1),
            "mode": In(range(max(2, len(self.modes)))),
            "last_layer": In(1),
            "keep": In(1),
            "current_write": In(range(geometry.current_buffers + 1)),
            "current_read": In(range(geometry.current_buffers + 1)),
            "operands": In(1),
            "rewind": In(1),
            "replay": In(1),
            "go": In(1),
            "bus": In(bus_signature(geometry)),
            "writes": Out(stream.Signature(geometry.write_request)),
            "halted": Out(1),
            "idle": Out(1),
            # layers run in step: the fetch's own stall out, every other TPPE's in
            **lockstep_ports(geometry),
            # the shared activation memory's read port (its region is not held here)
            **shared_ports(geometry),
        })

    def _program_memory(self):
        """(word shape, words) of the program ROM. With fetch_width K > 1 a word holds K
        entries: the K banks of a wide fetch, all read at one address."""
        K, width = self.fetch_width, self.layouts["entry"].width
        return K * width, -(-self.program_depth // K)

    def program_rom(self, entries, depth=None):
        """The fiber-program ROM holding ``entries`` (one TPPE's program) for the
        ``program`` port; ``depth`` entries deep (default: ``program_depth``; a part of the
        address space, the top's own or shared program memory, is less)."""
        limit = f"program_depth {self.program_depth}" if depth is None else f"{depth}"
        depth = self.program_depth if depth is None else depth
        if len(entries) > depth:
            raise ValueError(f"TPPE: {len(entries)} program entries exceed {limit}")
        shape, _ = self._program_memory()
        words = entries if self.fetch_width == 1 else program_groups(
            entries, self.fetch_width, self.layouts["entry"].width)
        return Memory(shape=shape, depth=max(1, -(-depth // self.fetch_width)), init=words)

    def weight_rom(self, weights):
        """The weight ROM holding ``weights`` (one TPPE's) for the ``weights`` port."""
        if len(weights) > self.weight_depth:
            raise ValueError(f"TPPE: {len(weights)} weights exceed weight_depth "
                             f"{self.weight_depth}")
        return Memory(shape=signed(self.geometry.weight_bits), depth=self.weight_depth,
                      init=weights)

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        T = g.lanes

        K = self.fetch_width
        B = g.write_lanes
        # Banked by chunk index, one bank per lane of the write bus (words: region, chunk,
        # offset; masks: region, chunk). A wide fetch reads K spike masks per cycle: K
        # copies, written together.
        m.submodules.spike_words = spike_words = BankedMemory(
            shape=T, depth=g.spike_words_depth, banks=B, shift=g.offset_bits)
        mask_copies = []
        for j in range(K):
            mask_copies.append(BankedMemory(shape=g.chunk, depth=g.spike_masks_depth,
                                            banks=B))
            m.submodules["spike_masks" if j == 0 else f"spike_masks_{j}"] = mask_copies[j]

        # The write bus fills every region held here; lane b writes bank b.
        for b in range(B):
            valid, bus = self.bus.valid[b], self.bus.payload[b]
            if g.shared_banks:
                # (the shared region's writes go to the top's shared memory instead)
                valid = valid & ~g.is_shared(bus.mask_addr[g.chunk_bits:])
            word_write = spike_words.write[b]
            m.d.comb += [word_write.en.eq(valid & bus.word_en),
                         word_write.addr.eq(bus.word_addr), word_write.data.eq(bus.word)]
            for copy in mask_copies:
                mask_write = copy.write[b]
                m.d.comb += [mask_write.en.eq(valid & bus.mask_en),
                             mask_write.addr.eq(bus.mask_addr),
                             mask_write.data.eq(bus.mask)]

        if K == 1:
            m.submodules.fetch = fetch = FiberFetch(g, self.layouts, self.program_depth,
                                                    self.fifo_depth)
            wiring.connect(m, fetch.program, wiring.flipped(self.program))
            wiring.connect(m, fetch.masks, mask_copies[0].read[0])
            if g.shared_banks:
                wiring.connect(m, fetch.activations, wiring.flipped(self.activations))
        else:
            m.submodules.fetch = fetch = WideFiberFetch(g, self.layouts, self.program_depth,
                                                        K, self.fifo_depth)
            wiring.connect(m, fetch.program, wiring.flipped(self.program))
            for j in range(K):
                wiring.connect(m, fetch.masks[j], mask_copies[j].read[0])
        # a recurrent layer's own spikes are none before step 0: its first sub-pass
        m.d.comb += [fetch.region.eq(self.region), fetch.state_region.eq(self.state_region),
                     fetch.first_chunk.eq(self.first_chunk & self.first_sub),
                     fetch.rewind.eq(self.rewind), fetch.replay.eq(self.replay),
                     fetch.go.eq(self.go)]
        if g.lockstep:
            m.d.comb += [self.stalling.eq(fetch.stalling), fetch.hold.eq(self.hold)]

        m.submodules.lif = lif = LIFUnit(g, self.modes, self.lif_steps)
        m.d.comb += lif.mode.eq(self.mode)
        word_read = spike_words.read[0]
        weight_read = self.weights
        accumulate = self._accumulate_laggy if self.join == "laggy" else self._accumulate_dual
        # The accumulate stage hands each neuron's currents to the LIF stage (``currents``),
        # or, with max pooling, first to the window maximum (partial rows stop there).
        currents = stream.Signature(g.neuron_currents).create()
        sink, pooling_idle = SimpleNamespace(i=currents), 1
        if g.max_pool:
            m.submodules.window_max = sink = WindowMax(g)
            wiring.connect(m, sink.o, wiring.flipped(currents))
            pooling_idle = sink.idle
        kept = None
        if g.current_buffers:
            m.submodules.kept_currents = kept = Memory(
                shape=data.ArrayLayout(signed(g.acc_bits), T),
                depth=g.current_buffers * g.current_depth, init=[])
        accumulating = accumulate(m, fetch, sink, word_read, weight_read, kept)
        if self.lif_buffer:
            # A finished neuron moves into the skid register when the LIF stage is busy,
            # and the accumulators take the next one meanwhile.
            m.submodules.lif_buffer = buffer = SkidBuffer(g.neuron_currents)
            m.d.comb += [buffer.i.valid.eq(currents.valid),
                         buffer.i.payload.eq(currents.payload),
                         currents.ready.eq(buffer.i.ready)]
            currents = buffer.o
            accumulating = accumulating & ~currents.valid
        lane0 = currents.payload.sums[0]
        if g.time_chunks > 1:
            lane0 = self.carry_membranes(m, lif, currents)
        sums = [lane0] + [currents.payload.sums[t] for t in range(1, T)]
        if kept is not None:
            sums = self.kept_currents(m, lif, sums, kept)
        m.d.comb += [lif.i.valid.eq(currents.valid), currents.ready.eq(lif.i.ready),
                     lif.i.payload.header.eq(currents.payload.header)]
        m.d.comb += [lif.i.payload.sums[t].eq(sums[t]) for t in range(T)]

        m.submodules.compress = compress = OutputCompressor(g)
        wiring.connect(m, lif.o, compress.i)
        m.d.comb += [compress.region.eq(self.out_region),
                     compress.last_layer.eq(self.last_layer), compress.keep.eq(self.keep)]
        wiring.connect(m, compress.o, wiring.flipped(self.writes))

        m.d.comb += [
            self.halted.eq(fetch.halted),
            self.idle.eq(fetch.halted & ~fetch.matches.valid & ~fetch.headers.valid
                         & accumulating & pooling_idle & lif.idle & compress.idle),
        ]
        return m

    def _accumulate_dual(self, m, fetch, lif, word_read, weight_read, kept):
        """The dual join: both offsets at once, T_c accumulators gated by the word. Returns
        the signal that is high when nothing is in flight here.

        With ``operands`` (a product by kept currents, Q (K^T V)), a pair's weight address
        is instead a position in the kept-current buffer ``current_read`` (``kept``, a
        second read port), read beside the weight ROM, and lane t adds that word's lane t:
        acc[t] += Q[t] * M[t]. One more read port and a 2:1 multiplexer per lane."""
        g = self.geometry
        T = g.lanes
        m.submodules.join = join = InnerJoin(g)
        wiring.connect(m, fetch.matches, join.i)
        # The accumulate stage's readiness depends on the LIF stage's; the skid buffer keeps
        # that chain out of the inner join (on iCE40 it was the critical path).
        m.submodules.skid = skid = SkidBuffer(g.matched_pair)
        wiring.connect(m, join.o, skid.i)

        # Memory stages: a pair's spike word and weight leave the block RAMs one cycle after
        # its acceptance (stage R) and are registered before any logic uses them (stage M).
        r_valid, r_end, r_empty, r_state = Signal(), Signal(), Signal(), Signal()
        m_valid, m_end, m_empty = Signal(), Signal(), Signal()
        m_word = Signal(T)
        m_weight = Signal(signed(g.weight_bits))
        addends = [m_weight] * T

        # The bias enters with a neuron's first pair (the header FIFO's head is that
        # neuron's header), so the accumulators end up holding its input currents. They
        # are then ``held`` for the LIF stage, which reads them as registers, while the
        # header is popped (its bias is for the next neuron's first pair) and kept.
        acc = [Signal(signed(g.acc_bits + 1), name=f"acc_{t}") for t in range(T)]
        first = Signal(init=1)
        held = Signal()
        held_header = Signal(g.neuron_header)
        bias = fetch.headers.payload.bias
        if g.operands:
            operand_read = kept.read_port()
            m_operand = Signal(data.ArrayLayout(signed(g.acc_bits), T))
            addends = [Mux(self.operands, m_operand[t], m_weight) for t in range(T)]
        sums = [Mux(first, bias, acc[t]) + Mux(m_word[t] & ~m_empty, addends[t], 0)
                for t in range(T)]
        m.d.comb += [
            lif.i.valid.eq(held),
            lif.i.payload.header.eq(held_header),
        ]
        m.d.comb += [lif.i.payload.sums[t].eq(acc[t]) for t in range(T)]
        # The header FIFO's head belongs to the pair in stage M (pushed before its chunks
        # were fetched, popped at its end); the valid test only makes that explicit.
        consume = m_valid & (~held | lif.i.ready) & fetch.headers.valid
        m.d.comb += fetch.headers.ready.eq(consume & m_end)
        r_move = r_valid & (~m_valid | consume)
        accept = skid.o.valid & (~r_valid | r_move)
        pair = skid.o.payload
        m.d.comb += [
            skid.o.ready.eq(~r_valid | r_move),
            word_read.addr.eq(g.spike_word_addr(pair.chunk, pair.offset, self.region,
                                                self.state_region)),
            word_read.en.eq(accept),
            weight_read.addr.eq(pair.waddr),
            weight_read.en.eq(accept),
        ]
        if g.operands:
            m.d.comb += [operand_read.addr.eq(self.kept_address(self.current_read,
                                                                pair.waddr)),
                         operand_read.en.eq(accept)]
            with m.If(r_move):
                m.d.sync += m_operand.eq(operand_read.data)
        with m.If(consume):
            m.d.sync += [acc[t].eq(sums[t]) for t in range(T)]
            m.d.sync += first.eq(m_end)
        with m.If(consume & m_end):
            m.d.sync += [held.eq(1), held_header.eq(fetch.headers.payload)]
        with m.Elif(lif.i.ready):
            m.d.sync += held.eq(0)
        word = self.state_word(word_read.data, r_state)
        if g.shared_banks:
            # a layer reading the shared activation memory: the pair brought its chunk's
            # words (selected here from registers: after the join's popcount the select
            # was the ECP5's critical path)
            r_word, r_shared = Signal(T), Signal()
            with m.If(accept):
                m.d.sync += [r_word.eq(pair.words[pair.offset]),
                             r_shared.eq(g.is_shared(self.region))]
            word = Mux(r_shared, r_word, word)
        with m.If(r_move):
            m.d.sync += [m_valid.eq(1), m_end.eq(r_end), m_empty.eq(r_empty),
                         m_word.eq(word),
                         m_weight.eq(weight_read.data)]
        with m.Elif(consume):
            m.d.sync += m_valid.eq(0)
        with m.If(accept):
            m.d.sync += [r_valid.eq(1), r_end.eq(pair.end), r_empty.eq(pair.empty),
                         r_state.eq(self.reads_own_state(pair.chunk))]
        with m.Elif(r_move):
            m.d.sync += r_valid.eq(0)

        return join.idle & ~skid.o.valid & ~r_valid & ~m_valid & ~held

    def reads_own_state(self, chunk):
        """Whether a fiber chunk (``fiber_chunk_bits``) holds a recurrent layer's own
        spikes of its last sub-pass."""
        g = self.geometry
        return chunk[g.chunk_bits] if g.recurrent else 0

    def state_word(self, word, own_state):
        """The spike word a join adds with: for a recurrent layer's own spikes of its last
        sub-pass (``own_state``) with T_c > 1, bit t moves to lane t + 1, as step t's
        spikes feed step t + 1; the top bit wraps to lane 0 only in the chunk's first
        sub-pass, where it is the step before the chunk (docs/architecture.md, "Recurrent
        layers"). A 2:1 multiplexer per lane and one AND; none without recurrent layers
        or with T_c = 1."""
        g = self.geometry
        L = g.lanes
        if not g.recurrent or L == 1:
            return word
        return Mux(own_state, Cat(word[L - 1] & self.first_sub, word[:L - 1]), word)

    def carry_membranes(self, m, lif, currents):
        """Each neuron's membrane, order bit and synaptic current (if any), from the end of
        one time chunk to the start of the next. Neurons enter and leave the LIF stage in
        program order, so a counter of each is the address; the read address runs one
        neuron ahead of the acceptance (``+ accept``) so that the word is on the read port
        when the neuron is accepted.

        Returns the lane-0 current for the LIF stage: with recurrent layers and T_c > 1,
        a recurrent layer's first sub-pass of a chunk is the only one whose lane 0 adds the
        previous chunk's last spikes (:meth:`state_word`), so that lane's current is kept
        here and given again to the later sub-passes."""
        g = self.geometry
        neurons = self.membrane_depth
        state = data.StructLayout(g.neuron_state)
        m.submodules.membranes = membranes = Memory(shape=state, depth=neurons, init=[])
        read, write = membranes.read_port(), membranes.write_port()
        loads = Signal(range(neurons + 1))
        stores = Signal(range(neurons + 1))
        layer_start = Signal(range(neurons + 1))    # the neurons of the layers before
        accept = lif.i.valid & lif.i.ready
        leave = lif.o.valid & lif.o.ready
        m.d.comb += [
            read.addr.eq(loads + accept),
            lif.i.payload.v.eq(Mux(self.first_chunk, 0, read.data.v)),
            lif.i.payload.state.eq(Mux(self.first_chunk, 0, read.data.state)),
            # a recurrent layer's sub-passes all start from the chunk's start; the last
            # one's state is the chunk's
            write.en.eq(leave & self.last_sub),
            write.addr.eq(stores),
            write.data.v.eq(lif.o.payload.v),
            write.data.state.eq(lif.o.payload.state),
        ]
        if g.i_bits:
            m.d.comb += [lif.i.payload.i.eq(Mux(self.first_chunk, 0, read.data.i)),
                         write.data.i.eq(lif.o.payload.i)]
        lane0 = currents.payload.sums[0]
        if g.recurrent and g.lanes > 1:
            m.submodules.lane0_currents = kept = Memory(shape=lane0.shape(), depth=neurons,
                                                        init=[])
            kept_read, kept_write = kept.read_port(), kept.write_port()
            m.d.comb += [kept_read.addr.eq(loads + accept),
                         kept_write.en.eq(accept & self.first_sub),
                         kept_write.addr.eq(loads), kept_write.data.eq(lane0)]
            lane0 = Mux(self.first_sub, lane0, kept_read.data)
        with m.If(accept):
            m.d.sync += loads.eq(loads + 1)
        with m.If(leave):
            m.d.sync += stores.eq(stores + 1)
        with m.If(self.go):
            m.d.sync += layer_start.eq(loads)
        with m.If(self.replay):
            m.d.sync += [loads.eq(layer_start), stores.eq(layer_start)]
        with m.If(self.rewind):
            m.d.sync += [loads.eq(0), stores.eq(0)]
        return lane0


    def kept_address(self, buffer, at):
        """The kept-current memory's address of position ``at`` of ``buffer`` (1-based)."""
        g = self.geometry
        position_bits = ceil_log2(g.current_depth)
        if g.current_buffers == 1:
            return at[:position_bits]
        return Cat(at[:position_bits], (buffer - 1)[:ceil_log2(g.current_buffers)])

    def kept_currents(self, m, lif, sums, kept):
        """Membrane shortcuts kept instead of recomputed (docs/architecture.md, "Spiking
        transformers"): a layer with ``current_read`` = b adds to each neuron's T_c
        currents those its TPPE kept for the same neuron in buffer b; with
        ``current_write`` = b it keeps its neurons' currents (after that add) in buffer b.
        Both happen as a neuron enters the LIF stage; the layers that keep and add compute
        the same neurons on the same TPPEs in the same order (the scheduler sees to it), so
        the neuron's position in the layer, counted here, is the address within a buffer.
        The read runs one neuron ahead (``+ accept``), so the word is on the read port when
        the neuron is accepted; an in-place update (read b, write b) writes neuron k after
        neuron k + 1's word was read.

        A layer with ``operands`` reads buffer ``current_read`` as its pairs' operands
        (:meth:`_accumulate_dual`), not here.

        Returns the currents for the LIF stage. Resources: ``kept``, a memory of
        ``current_buffers`` x ``current_depth`` words of T_c x acc_bits, T_c adders, a
        position counter."""
        g = self.geometry
        T = g.lanes
        read, write = kept.read_port(), kept.write_port()
        position = Signal(range(g.current_depth + 1))
        accept = lif.i.valid & lif.i.ready
        with m.If(accept):
            m.d.sync += position.eq(position + 1)
        with m.If(self.go | self.rewind):
            m.d.sync += position.eq(0)

        adding = (self.current_read != 0) & ~self.operands
        total = [Signal(signed(g.acc_bits), name=f"kept_sum_{t}") for t in range(T)]
        m.d.comb += [total[t].eq(sums[t] + Mux(adding, read.data[t], 0)) for t in range(T)]
        m.d.comb += [
            read.addr.eq(self.kept_address(self.current_read, position + accept)),
            write.en.eq(accept & (self.current_write != 0)),
            write.addr.eq(self.kept_address(self.current_write, position)),
            write.data.eq(Cat(total)),
        ]
        return total

    def _accumulate_laggy(self, m, fetch, lif, word_read, weight_read, kept):
        """LoAS's laggy join: the weight address goes straight to the weight memory and the
        pseudo-accumulator; the spike word follows on the walker's schedule and corrects.
        Returns the signal that is high when nothing is in flight here."""
        g = self.geometry
        m.submodules.join = join = LaggyJoin(g, self.fifo_depth)
        wiring.connect(m, fetch.matches, join.i)
        # Skid buffers keep the accumulator's readiness out of both sides of the join.
        m.submodules.weight_skid = weight_skid = SkidBuffer(weight_pair(g))
        m.submodules.spike_skid = spike_skid = SkidBuffer(spike_pair(g))
        wiring.connect(m, join.weights, weight_skid.i)
        wiring.connect(m, join.spikes, spike_skid.i)
        m.submodules.accumulator = accumulator = LaggyAccumulator(g, self.fifo_depth)
        wiring.connect(m, fetch.headers, accumulator.headers)
        # The currents and the header; the membrane a neuron starts from comes from
        # carry_membranes (several time chunks) or is 0.
        m.d.comb += [lif.i.valid.eq(accumulator.o.valid),
                     accumulator.o.ready.eq(lif.i.ready),
                     lif.i.payload.sums.eq(accumulator.o.payload.sums),
                     lif.i.payload.header.eq(accumulator.o.payload.header)]
        weight_pair_in = weight_skid.o.payload
        weights_busy = _memory_stage(
            m, weight_skid.o, weight_read, weight_pair_in.waddr, accumulator.weights,
            "weight", ("end", "empty"))
        spike_pair_in = spike_skid.o.payload
        words_busy = _memory_stage(
            m, spike_skid.o, word_read,
            g.spike_word_addr(spike_pair_in.chunk, spike_pair_in.offset, self.region,
                              self.state_region),
            accumulator.words, "word", ("end", "empty"),
            adjust=(self.reads_own_state(spike_pair_in.chunk), self.state_word))
        return (join.idle & ~weight_skid.o.valid & ~spike_skid.o.valid & ~weights_busy
                & ~words_busy & accumulator.idle)


def _memory_stage(m, source, read, address, sink, data_field, flags, adjust=None):
    """``source`` pairs -> read ``read`` at ``address`` -> ``sink`` (registered).

    The memory's output (stage R, the cycle after acceptance) is registered into ``sink``'s
    payload (stage M) before any logic uses it: a block RAM's clock-to-out is slow. The
    ``flags`` fields of the source payload travel alongside. ``adjust`` = (condition,
    function): where the condition (of the source payload) held, the data registered is
    function(data, 1), else function(data, 0). Returns "a pair in flight".
    """
    r_valid = Signal()
    r_adjust = Signal()
    value = read.data if adjust is None else adjust[1](read.data, r_adjust)
    r_flags = {name: Signal(name=f"r_{data_field}_{name}") for name in flags}
    r_move = r_valid & (~sink.valid | sink.ready)
    accept = source.valid & (~r_valid | r_move)
    m.d.comb += [source.ready.eq(~r_valid | r_move), read.addr.eq(address),
                 read.en.eq(accept)]
    with m.If(r_move):
        m.d.sync += [sink.valid.eq(1), sink.payload[data_field].eq(value)]
        m.d.sync += [sink.payload[name].eq(r_flags[name]) for name in flags]
    with m.Elif(sink.ready):
        m.d.sync += sink.valid.eq(0)
    with m.If(accept):
        m.d.sync += r_valid.eq(1)
        m.d.sync += [r_flags[name].eq(source.payload[name]) for name in flags]
        if adjust is not None:
            m.d.sync += r_adjust.eq(adjust[0])
    with m.Elif(r_move):
        m.d.sync += r_valid.eq(0)
    return r_valid | sink.valid
