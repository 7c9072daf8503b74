"""BankedMemory: each bank written by its own port, every word read back through any read
port one cycle after its address, as one memory of that depth would be."""

import pytest

from hwgen.gateware.banked_memory import BankedMemory
import amaranth_streams


@pytest.mark.parametrize("banks, shift", [(1, 0), (2, 0), (4, 2), (2, 3)])
def test_words_written_by_bank_read_back_at_their_addresses(banks, shift):
    depth = 64
    dut = BankedMemory(shape=8, depth=depth, banks=banks, shift=shift, read_ports=2)
    bank_of = [(a >> shift) & (banks - 1) for a in range(depth)]
    value = [(a * 37 + 11) & 0xff for a in range(depth)]
    read = {0: [], 1: []}

    async def bench(ctx):
        # every bank's port writes in the same cycles, a word of its own bank each
        per_bank = [[a for a in range(depth) if bank_of[a] == b] for b in range(banks)]
        for step in range(depth // banks):
            for b in range(banks):
                port = dut.write[b]
                ctx.set(port.en, 1)
                ctx.set(port.addr, per_bank[b][step])
                ctx.set(port.data, value[per_bank[b][step]])
            await ctx.tick()
        for b in range(banks):
            ctx.set(dut.write[b].en, 0)
        # port 0 reads upwards, port 1 downwards; data follows one cycle after the address
        for a in range(depth + 1):
            if a < depth:
                ctx.set(dut.read[0].addr, a)
                ctx.set(dut.read[1].addr, depth - 1 - a)
            await ctx.tick()
            read[0].append(ctx.get(dut.read[0].data))
            read[1].append(ctx.get(dut.read[1].data))

    amaranth_streams.run(dut, bench)
    assert read[0][:depth] == value
    assert read[1][:depth] == value[::-1]


def test_a_read_without_enable_holds_its_word():
    dut = BankedMemory(shape=8, depth=16, banks=2)
    held = []

    async def bench(ctx):
        for a in range(16):
            port = dut.write[a & 1]
            ctx.set(port.en, 1)
            ctx.set(port.addr, a)
            ctx.set(port.data, a + 100)
            await ctx.tick()
            ctx.set(port.en, 0)
        ctx.set(dut.read[0].addr, 3)
        await ctx.tick()
        ctx.set(dut.read[0].en, 0)
        ctx.set(dut.read[0].addr, 4)            # another bank, not read
        for _ in range(3):
            await ctx.tick()
            held.append(ctx.get(dut.read[0].data))

    amaranth_streams.run(dut, bench)
    assert held == [103, 103, 103]


def test_parameters_are_validated(refuses):
    refuses(lambda: BankedMemory(shape=8, depth=16, banks=3), ValueError,
            "BankedMemory: banks 3 must be a power of two")
    refuses(lambda: BankedMemory(shape=8, depth=12, banks=2, shift=2), ValueError,
            r"BankedMemory: depth 12 must be a positive multiple of banks x 2\*\*shift = 8")
    refuses(lambda: BankedMemory(shape=8, depth=16, read_ports=0), ValueError,
            "BankedMemory: read_ports 0 must be at least 1")
