"""A memory split into banks by a field of its address, with one write port per bank.

The spike buffers are written by the write bus, B writes a cycle when it has B lanes
(docs/architecture.md, "The write bus"); a block RAM has one write port beside its read
port, so each lane writes a bank of its own, chosen by the low bits of the chunk index.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2


class BankedMemory(wiring.Component):
    """``depth`` words of ``shape`` in ``banks`` memories of ``depth / banks`` words.

    Word ``a`` is in bank ``a[shift : shift + log2(banks)]`` at the address made of the
    other bits. ``write[b]`` writes bank b only: its address must have bank field b (the
    write bus grants a lane only requests of its bank). ``read[k]`` reads any word, one
    cycle after the address (``en``), as a block RAM does.

    Latency: 1 cycle, plus a ``banks``-way multiplexer after the memories on the read data.
    Resources: ``banks`` memories of ``depth / banks`` words (a block RAM holds no fewer
    words for being split: small banks leave it part empty), each with one write port and
    ``read_ports`` read ports; a register of the bank of each read in flight. With one
    bank it is exactly one memory.
    """

    def __init__(self, *, shape, depth, banks=1, shift=0, read_ports=1):
        if banks < 1 or banks & (banks - 1):
            raise ValueError(f"BankedMemory: banks {banks} must be a power of two")
        bank_bits = ceil_log2(banks)
        if depth < 1 or depth % (banks << shift):
            raise ValueError(f"BankedMemory: depth {depth} must be a positive multiple of "
                             f"banks x 2**shift = {banks << shift}")
        if read_ports < 1:
            raise ValueError(f"BankedMemory: read_ports {read_ports} must be at least 1")
        self.shape, self.depth, self.banks, self.shift = shape, depth, banks, shift
        self.bank_bits = bank_bits
        self._read_ports = read_ports
        addr_width = ceil_log2(depth)
        super().__init__({
            "read": Out(ReadPort.Signature(addr_width=addr_width, shape=shape))
                    .array(read_ports),
            "write": Out(WritePort.Signature(addr_width=addr_width, shape=shape))
                     .array(banks),
        })

    def bank_address(self, addr):
        """(bank, address within the bank) of a word address."""
        lo, hi = self.shift, self.shift + self.bank_bits
        return addr[lo:hi], Cat(addr[:lo], addr[hi:])

    def elaborate(self, platform):
        m = Module()
        memories = []
        for b in range(self.banks):
            memory = Memory(shape=self.shape, depth=self.depth // self.banks, init=[])
            m.submodules["bank" if self.banks == 1 else f"bank{b}"] = memory
            memories.append(memory)
            write, port = memory.write_port(), self.write[b]
            _, addr = self.bank_address(port.addr)
            m.d.comb += [write.en.eq(port.en), write.addr.eq(addr), write.data.eq(port.data)]
        for read in self.read:
            bank, addr = self.bank_address(read.addr)
            ports = [memory.read_port() for memory in memories]
            for port in ports:
                m.d.comb += [port.addr.eq(addr), port.en.eq(read.en)]
            if self.banks == 1:
                m.d.comb += read.data.eq(ports[0].data)
                continue
            # the bank of the word on the read ports: registered when they read
            selected = Signal(self.bank_bits)
            with m.If(read.en):
                m.d.sync += selected.eq(bank)
            with m.Switch(selected):
                for b, port in enumerate(ports):
                    with m.Case(b):
                        m.d.comb += read.data.eq(port.data)
        return m
