"""Wide fiber fetch: :class:`~hwgen.gateware.fiber_fetch.FiberFetch` reading K entries per cycle.

At LoAS's sparsity a neuron has about three times more nonzero weight chunks than matched
pairs; fetched one per cycle, the chunks whose AND with the spikes is empty made the fetch,
not the join, the bottleneck (docs/architecture.md, "Performance"). This unit reads an
aligned group of ``fetch_width`` (K) program entries per cycle from a program memory K
entries wide, reads the K spike masks from K copies of the mask memory (one read port
each, written together by the TPPE), ANDs each CHUNK entry with its mask, and passes on
only the chunks with a matched bit, one per cycle. Empty chunks thus cost 1/K of a cycle.

The compiler pads the program (:func:`hwgen.compiler.instruction_format.pad_groups`) so
that every NEURON header starts a group: a group holds at most one header, pushed as
FiberFetch pushes it, and its chunks all belong to that neuron. A LAYER_END ends its group.

The output protocol is FiberFetch's: the same matches and headers streams, the neuron's
end carried by its last match (held back until the next one is known), one empty match for
a neuron without a matched pair, so nothing downstream changes.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.utils import ceil_log2
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from hwgen.compiler.instruction_format import (TAG_CALL, TAG_CHUNK, TAG_LAYER_END,
                                               TAG_NEURON, TAG_RETURN)

from .fiber_fetch import (Calls, lockstep_ports, may_fill, output_fifos, program_controls,
                          walk_stall)
from .geometry import struct_of


def program_groups(words, fetch_width, entry_width):
    """The words of a program memory ``fetch_width`` entries wide: entry ``j`` of word ``i``
    is program entry ``i * fetch_width + j`` (bits ``j * entry_width`` up)."""
    if len(words) % fetch_width:
        raise ValueError(f"program_groups: {len(words)} entries are not whole groups of "
                         f"{fetch_width} (the compiler pads them)")
    return [sum(word << (j * entry_width) for j, word in enumerate(words[i:i + fetch_width]))
            for i in range(0, len(words), fetch_width)]


class WideFiberFetch(wiring.Component):
    """Front end of a TPPE's inner join, ``fetch_width`` program entries per cycle.

    Ports as :class:`~hwgen.gateware.fiber_fetch.FiberFetch`, except: ``program`` reads
    a memory of K-entry groups (:func:`program_groups`), and ``masks`` is K read ports on
    identical copies of the spike-mask memory, port j for the group's entry j.

    Throughput: one group per cycle into a queue of ``fifo_depth`` groups and a head
    register, which skips groups with nothing to emit; one chunk match per cycle out of it
    (the join's rate). A neuron's last chunk without a matched bit folds its ``end`` into
    the group's last match instead of costing a cycle. So a neuron costs about the larger
    of its groups and its matched chunks, where FiberFetch costs its entries. Latency: a
    layer's fill is one cycle shorter than with FiberFetch (its first header and chunk come
    in one group, and no pushed-match register follows the hold-back, but the
    queue's head is a register: ``WIDE_FETCH_SAVING`` in
    :mod:`hwgen.compiler.scheduler.cycle_model`).
    Backpressure: as FiberFetch; a full match FIFO stops the emitting end, and the program
    walk once the queue is full; a full header FIFO stops only the program walk.
    Resources: K W-bit ANDs and OR-reductions, a K-way priority pick and multiplexer of
    matches, K times FiberFetch's stage registers, the group queue (``fifo_depth`` x K
    chunk matches in distributed RAM or flip-flops, and a registered head), the hold-back
    register and two FIFOs.
    """

    def __init__(self, geometry, layouts, program_depth, fetch_width, fifo_depth=4):
        if fetch_width not in (2, 4, 8):
            raise ValueError(f"WideFiberFetch: fetch_width {fetch_width} must be 2, 4 or 8 "
                             f"(1 is FiberFetch)")
        if fifo_depth < 2:
            raise ValueError(f"WideFiberFetch: fifo_depth {fifo_depth} must be at least 2")
        self.geometry = geometry
        self.layouts = layouts
        self.fetch_width = fetch_width
        self.fifo_depth = fifo_depth
        self.groups = -(-program_depth // fetch_width)
        self.program_addr_bits = ceil_log2(self.groups)
        entry_width = layouts["entry"].width
        super().__init__({
            "program": In(ReadPort.Signature(addr_width=self.program_addr_bits,
                                             shape=fetch_width * entry_width)),
            "masks": In(ReadPort.Signature(addr_width=geometry.local_mask_addr_bits,
                                           shape=geometry.chunk)).array(fetch_width),
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
        K = self.fetch_width
        entry_layout = struct_of(self.layouts["entry"])
        chunk_layout = struct_of(self.layouts["chunk_entry"])
        neuron_layout = struct_of(self.layouts["neuron_entry"])
        entry_width = self.layouts["entry"].width

        # Buffered FIFOs, for the same clock-speed reason as FiberFetch's.
        match_fifo, header_fifo = output_fifos(m, self, g, self.fifo_depth)

        pc = Signal(self.program_addr_bits + 1)
        running = Signal()

        # Stage 0: a group leaving the program memory; registered into stage 1 only.
        s0_valid = Signal()
        # Stage 1: the registered group, decoded lane by lane.
        s1_valid = Signal()
        group = Signal(K * entry_width)
        entries = [Signal(entry_layout, name=f"entry_{j}") for j in range(K)]
        s1_chunks = [Signal(chunk_layout, name=f"s1_chunk_{j}") for j in range(K)]
        m.d.comb += [entries[j].eq(group[j * entry_width:(j + 1) * entry_width])
                     for j in range(K)]
        m.d.comb += [s1_chunks[j].eq(entries[j].payload) for j in range(K)]
        s1_neuron = Signal(neuron_layout)
        m.d.comb += s1_neuron.eq(entries[0].payload)
        s1_is_chunk = [s1_valid & (entries[j].tag == TAG_CHUNK) for j in range(K)]
        # Only lane 0 holds a header (the compiler pads); a LAYER_END may be in any lane,
        # with only PADs after it.
        s1_is_neuron = s1_valid & (entries[0].tag == TAG_NEURON)
        s1_layer_end = s1_valid & Cat(*(entries[j].tag == TAG_LAYER_END
                                        for j in range(K))).any()
        called = "call_entry" in self.layouts
        calls = Calls(m, self.layouts, entries[0].payload,
                      s1_valid & (entries[0].tag == TAG_CALL) if called else None,
                      s1_valid & (entries[0].tag == TAG_RETURN) if called else None, pc,
                      g.lockstep)
        # what stage 1 reads: nothing of a silent call's block
        reads_neuron = calls.reads(s1_is_neuron)
        reads_chunks = [calls.reads(is_chunk) for is_chunk in s1_is_chunk]

        # Stage 2: the group's CHUNK entries waiting for their spike masks.
        s2_chunk = Signal(K)
        s2_empty_neuron = Signal()
        s2_wmask = [Signal(g.chunk, name=f"s2_wmask_{j}") for j in range(K)]
        s2_index = [Signal(g.fiber_chunk_bits, name=f"s2_index_{j}") for j in range(K)]
        s2_wbase = [Signal(g.weight_addr_bits, name=f"s2_wbase_{j}") for j in range(K)]
        s2_last = Signal(K)
        # Stage 3: a queue of groups with something to emit, the masks ANDed: lane j is
        # ``pending`` if it is a chunk with a matched bit (``any``) or the neuron's last
        # chunk (its end must still reach a match); ``empty``: lane 0 is the header of a
        # neuron without chunks. Groups with nothing to emit are not queued, so they cost
        # the emitting end nothing, and the queue lets the program walk on while a group
        # emits several matches, one per cycle.
        group_record = data.StructLayout({
            "pending": K, "any": K, "empty": 1,
            "matches": data.ArrayLayout(g.chunk_match, K)})
        # ``fifo_depth`` groups in its memory: on the LoAS-like benchmark layers 2 left
        # 1.26x the ideal bound, 4 1.12x, 8 1.08x (docs/results.md, "Fetch width"). Plus a
        # registered head (a buffered FIFO), at a cycle of latency per layer: read
        # asynchronously, the queue's memory was the start of the critical path, through
        # the pick into the hold-back register (@digits' core on the ECP5, median of three
        # seeds, K = 4: 98.9 MHz, 109.5 with the head registered; K = 8, seed 1: 78.6,
        # 88.0; docs/results.md). One deeper, so that the memory still takes a group a
        # cycle while the head moves at fifo_depth 2.
        m.submodules.group_fifo = group_fifo = fifo.SyncFIFOBuffered(
            width=group_record.size, depth=self.fifo_depth + 1)
        head = Signal(group_record)
        m.d.comb += head.eq(group_fifo.r_data)
        served = Signal(K)          # lanes of the head group already emitted

        # Hold-back register: the last match, until we know whether it ends its neuron.
        held_valid = Signal()
        held = Signal(g.chunk_match)

        # The lane emitted this cycle: the lowest pending one of the head group.
        remaining = Signal(K)
        m.d.comb += remaining.eq(Mux(group_fifo.r_rdy, head.pending & ~served, 0))
        pick = Signal(K)
        m.d.comb += pick.eq(remaining & -remaining)
        rest = Signal(K)
        m.d.comb += rest.eq(remaining & ~pick)
        # Lanes left with nothing to emit but an end (a last chunk without a matched bit).
        only_end = Signal()
        m.d.comb += only_end.eq((rest & head.any) == 0)
        picked_any = Signal()
        picked_end = Signal()
        new_match = Signal(g.chunk_match)
        for j in range(K):
            with m.If(pick[j]):
                m.d.comb += [new_match.eq(head.matches[j]), picked_any.eq(head.any[j]),
                             picked_end.eq(head.matches[j].end)]
        arrives = Signal()
        ends_held = Signal()
        done = Signal()             # the head group has emitted everything after this
        with m.If(group_fifo.r_rdy & head.empty):
            # Lane 0 is the header of a neuron without chunks; nothing else is pending.
            m.d.comb += [arrives.eq(1), new_match.wmask.eq(0), new_match.end.eq(1),
                         done.eq(1)]
        with m.Elif(picked_any):
            m.d.comb += arrives.eq(1)
            # The neuron's last chunk, if it matched nothing, ends this match instead.
            with m.If(only_end):
                m.d.comb += [new_match.end.eq(picked_end | (rest != 0)), done.eq(1)]
        with m.Elif(pick != 0):
            # The neuron's last chunk, with no match before it in this group: a held match
            # of this neuron now ends it, else the neuron matched nothing at all.
            m.d.comb += done.eq(1)
            with m.If(held_valid & ~held.end):
                m.d.comb += ends_held.eq(1)
            with m.Else():
                m.d.comb += arrives.eq(1)

        push_held = held_valid & (arrives | (held.end & ~ends_held))
        # FiberFetch's two stall conditions: a full match FIFO stops the emitting end, and
        # with it, once the group queue is full, everything before it; a full header FIFO
        # stops only stage 1, while stage 2, the queue and the hold-back register drain.
        stall_back = held_valid & arrives & ~match_fifo.w_rdy
        hold3 = ~group_fifo.w_rdy
        stall = walk_stall(
            m, self, g, hold3 | (reads_neuron & ~header_fifo.w_rdy),
            ahead=lambda: (may_fill(m, group_fifo, self.fifo_depth + 1,
                                    (s2_chunk != 0) | s2_empty_neuron, "group")
                           | may_fill(m, header_fifo, self.fifo_depth,
                                      reads_neuron & ~self.hold, "header")))
        m.d.comb += [
            match_fifo.w_data.eq(held),
            match_fifo.w_en.eq(push_held & match_fifo.w_rdy & ~stall_back),
            group_fifo.r_en.eq(group_fifo.r_rdy & done & ~stall_back),
        ]
        # Each lane's spike mask as read; a recurrent layer's state before its first step
        # is no spikes.
        smasks = [Signal(g.chunk, name=f"smask_{j}") for j in range(K)]
        for j in range(K):
            m.d.comb += smasks[j].eq(self.masks[j].data)
            if g.recurrent:
                with m.If(self.first_chunk & s2_index[j][g.chunk_bits]):
                    m.d.comb += smasks[j].eq(0)
        with m.If(~stall_back):
            with m.If(arrives):
                m.d.sync += [held.eq(new_match), held_valid.eq(1)]
            with m.Elif(ends_held):
                m.d.sync += held.end.eq(1)
            with m.Elif(push_held & match_fifo.w_rdy):
                m.d.sync += held_valid.eq(0)
            with m.If(done):
                m.d.sync += served.eq(0)
            with m.Else():
                m.d.sync += served.eq(served | pick)
        # Stage 2 -> the group queue (whenever it has room; stage 2 moves on then).
        record = Signal(group_record)
        any_bits = Cat(*((smasks[j] & s2_wmask[j]) != 0 for j in range(K)))
        m.d.comb += [record.any.eq(any_bits), record.pending.eq(s2_chunk & (any_bits | s2_last)),
                     record.empty.eq(s2_empty_neuron)]
        for j in range(K):
            match = record.matches[j]
            m.d.comb += [match.smask.eq(smasks[j]), match.wmask.eq(s2_wmask[j]),
                         match.chunk.eq(s2_index[j]), match.wbase.eq(s2_wbase[j]),
                         match.end.eq(s2_last[j])]
        m.d.comb += [group_fifo.w_data.eq(record),
                     group_fifo.w_en.eq((record.pending != 0) | record.empty)]

        # Stage 1 -> stage 2. A LAYER_END in stage 1 stops the walk; the group already
        # read behind it (stage 0) is dropped and read again when the next layer starts.
        # A CALL or RETURN drops it too, and the walk goes on at the jump's target.
        stop = calls.stops(s1_layer_end)
        issue = running & ~stall & ~stop
        header = calls.header(m, g, s1_neuron)
        fiber_chunks = [Signal(g.fiber_chunk_bits, name=f"fiber_chunk_{j}") for j in range(K)]
        for j in range(K):
            c = s1_chunks[j]
            index = calls.chunk_index(m, c.chunk, name=f"chunk_index_{j}")
            m.d.comb += [
                fiber_chunks[j].eq(Cat(index, c.state) if g.state_pairs else index),
                self.masks[j].addr.eq(Cat(index, g.source_region(
                    fiber_chunks[j], self.region, self.state_region))),
                self.masks[j].en.eq(~stall),
            ]
        m.d.comb += [
            self.program.addr.eq(pc),
            self.program.en.eq(issue),
            header_fifo.w_data.eq(header),
            header_fifo.w_en.eq(reads_neuron & ~stall),
        ]
        with m.If(~stall):
            m.d.sync += [
                s0_valid.eq(issue),
                s1_valid.eq(s0_valid & ~stop),
                group.eq(self.program.data),
                s2_chunk.eq(Cat(*reads_chunks)),
                s2_empty_neuron.eq(reads_neuron & s1_neuron.empty),
                s2_last.eq(Cat(*(c.last for c in s1_chunks))),
            ]
            for j in range(K):
                m.d.sync += [s2_wmask[j].eq(calls.weight_mask(m, s1_chunks[j],
                                                              name=f"weight_mask_{j}")),
                             s2_index[j].eq(fiber_chunks[j]),
                             s2_wbase[j].eq(s1_chunks[j].wbase)]
            with m.If(issue):
                m.d.sync += pc.eq(pc + 1)
            with m.If(s1_layer_end):
                m.d.sync += [running.eq(0), s0_valid.eq(0)]
                with m.If(s0_valid):
                    m.d.sync += pc.eq(pc - 1)
            calls.step(m, pc, s0_valid)
        with m.Elif(~hold3):
            # Stage 1 waits for the header FIFO; stage 2 moved on: a bubble.
            m.d.sync += [s2_chunk.eq(0), s2_empty_neuron.eq(0)]

        program_controls(m, self, pc, running)

        m.d.comb += self.halted.eq(~running & ~s0_valid & ~s1_valid & (s2_chunk == 0)
                                   & ~s2_empty_neuron & ~group_fifo.r_rdy & ~held_valid)
        return m
