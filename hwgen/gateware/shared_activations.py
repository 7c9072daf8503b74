"""The shared activation memory: one spike-buffer region held once for all TPPEs.

With ``activation_memory = shared`` (docs/architecture.md, "A shared activation memory"),
region 1 of the spike buffers is not copied into every TPPE: it lives here, in P banks,
and only layers run in step read it. In step every TPPE reads the same program entry in
the same cycle, each for its own output position; the compiler checked that in every
cycle the chunks they read with a nonzero weight mask lie in different banks
(:func:`hwgen.compiler.scheduler.shared_activations.check_banks`), so each bank serves at
most one TPPE a cycle and no read waits. A row holds a chunk's mask and all its W words,
read together: the words then travel with the chunk match, and no join reads this memory
at its own pace.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.lib.wiring import In, Out


class SharedActivations(wiring.Component):
    """Region 1 of the spike buffers in ``geometry.shared_banks`` banks.

    Ports: ``read[p]``, TPPE p's read port (a chunk index of the region in, its mask and
    words, ``geometry.shared_row``, out one cycle after ``en``, as a block RAM's; unlike
    one, held only until another port reads the same bank: a fetch that reads nothing in
    a cycle either stalls, and then every TPPE does, or has an entry that cannot match);
    ``write_valid`` / ``write``, the write bus's one lane
    (``geometry.write_request``): its writes to region 1 land here, a word into its lane
    of the chunk's row, a mask into the chunk's mask.

    Chunk c is in bank ``c[shift : shift + log2 P]`` (:meth:`Geometry.shared_bank`), at
    the row made of the other bits. A bank reads at the address of the TPPE whose read
    falls in it; two reads in one bank in one cycle are not arbitrated (the compiler
    refuses a program where they would meet).

    Latency: 1 cycle, plus a P-way multiplexer on each TPPE's data. Throughput: one read
    per TPPE and cycle; one write a cycle. Resources: P mask memories (W bits) and P word
    memories (W x T_c bits, written one word at a time), each of 2^chunk_bits / P rows; per
    bank a P-input address select; per TPPE a registered bank number.
    """

    def __init__(self, geometry):
        if not geometry.shared_banks:
            raise ValueError("SharedActivations: the geometry has no shared banks "
                             "(shared_banks 0)")
        self.geometry = geometry
        super().__init__({
            "read": Out(ReadPort.Signature(addr_width=geometry.chunk_bits,
                                           shape=geometry.shared_row))
                    .array(geometry.shared_banks),
            "write_valid": In(1),
            "write": In(geometry.write_request),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        P, W, T = g.shared_banks, g.chunk, g.lanes
        rows = (1 << g.chunk_bits) >> g.shared_bank_bits
        request = self.write
        here = self.write_valid & g.is_shared(request.mask_addr[g.chunk_bits:])
        write_bank, write_row = g.shared_bank(request.mask_addr[:g.chunk_bits])
        lane = request.word_addr[:g.offset_bits]
        reads = [g.shared_bank(port.addr) for port in self.read]
        masks, words = [], []
        for b in range(P):
            m.submodules[f"masks{b}"] = mask_memory = Memory(shape=W, depth=rows, init=[])
            m.submodules[f"words{b}"] = word_memory = Memory(
                shape=data.ArrayLayout(T, W), depth=rows, init=[])
            mask_write, word_write = mask_memory.write_port(), word_memory.write_port(
                granularity=1)
            to_bank = here & (write_bank == b)
            m.d.comb += [
                mask_write.en.eq(to_bank & request.mask_en), mask_write.addr.eq(write_row),
                mask_write.data.eq(request.mask),
                word_write.en.eq(Mux(to_bank & request.word_en, Const(1, W) << lane, 0)),
                word_write.addr.eq(write_row), word_write.data.eq(Cat([request.word] * W)),
            ]
            mask_read, word_read = mask_memory.read_port(), word_memory.read_port()
            hits = [port.en & (bank == b) for port, (bank, _) in zip(self.read, reads)]
            row = Signal(range(rows), name=f"row{b}")
            m.d.comb += row.eq(0)
            for hit, (_, at) in zip(hits, reads):
                with m.If(hit):
                    m.d.comb += row.eq(at)
            m.d.comb += [mask_read.en.eq(Cat(hits).any()), mask_read.addr.eq(row),
                         word_read.en.eq(Cat(hits).any()), word_read.addr.eq(row)]
            masks.append(mask_read.data)
            words.append(word_read.data)
        for port, (bank, _) in zip(self.read, reads):
            # the bank of the row on the data: registered with the read it answers
            selected = Signal.like(bank, name="selected_bank")
            with m.If(port.en):
                m.d.sync += selected.eq(bank)
            with m.Switch(selected):
                for b in range(P):
                    with m.Case(b):
                        m.d.comb += [port.data.mask.eq(masks[b]),
                                     port.data.words.eq(words[b])]
        return m
